-- The indexes Django creates for the foreign keys the migrator's queries
-- filter on (ForeignKey has db_index=True; Django names them
-- <table>_<column>_<hash>). Core's real tables have them; core_schema.sql,
-- being minimal, does not.
CREATE INDEX environments_environment_project_id_idx ON environments_environment (project_id);
CREATE INDEX environments_identity_environment_id_idx ON environments_identity (environment_id);
CREATE INDEX environments_trait_identity_id_idx ON environments_trait (identity_id);
CREATE INDEX features_featurestate_identity_id_idx ON features_featurestate (identity_id);
CREATE INDEX features_featurestate_environment_id_idx ON features_featurestate (environment_id);
CREATE INDEX features_featurestate_feature_id_idx ON features_featurestate (feature_id);
CREATE INDEX multivariate_multivariatefeaturestatevalue_feature_state_id_idx
  ON multivariate_multivariatefeaturestatevalue (feature_state_id);
