-- Fixtures for the end-to-end migration test (after core_schema.sql).
-- Ids are explicit so the expected items can name them.

INSERT INTO organisations_organisation (id, name, persist_trait_data) VALUES (1, 'org', true);
INSERT INTO projects_project (id, name, organisation_id, enable_dynamo_db) VALUES
  (1, 'migrated', 1, false), (2, 'other project', 1, false);
INSERT INTO environments_environment (id, name, api_key, project_id, use_v2_feature_versioning, deleted_at) VALUES
  (1, 'v1 env', 'envV1', 1, false, NULL),
  (2, 'v2 env', 'envV2', 1, true, NULL),
  (3, 'deleted env', 'envDeleted', 1, false, now()),
  (4, 'other project env', 'envOther', 2, false, NULL);
INSERT INTO environments_environmentapikey (key, name, created_at, active, environment_id) VALUES
  ('ser.aaaaaaaaaaaaaaaaaaaaaa', 'k', now(), true, 1);

INSERT INTO features_feature (id, name, type, project_id) VALUES
  (1, 'std', 'STANDARD', 1), (2, 'mv', 'MULTIVARIATE', 1), (3, 'other', 'STANDARD', 1),
  (4, 'no_value', 'STANDARD', 1), (5, 'elsewhere', 'STANDARD', 2);
INSERT INTO multivariate_multivariatefeatureoption
  (id, uuid, feature_id, type, boolean_value, integer_value, string_value, key, default_percentage_allocation) VALUES
  (1, 'a0000000-0000-4000-8000-000000000001', 2, 'unicode', NULL, NULL, 'variant-a', 'a', 30),
  (2, 'a0000000-0000-4000-8000-000000000002', 2, 'unicode', NULL, NULL, 'variant-b', 'b', 20),
  (3, 'a0000000-0000-4000-8000-000000000003', 2, 'int', NULL, 7, NULL, NULL, 10);

-- Identities. 10: zero microseconds; 11: microseconds; 12: 1025 characters;
-- 13: 600 two-byte characters (1200 bytes); 14: a NaN float trait; 15: bare.
INSERT INTO environments_identity (id, identifier, created_date, environment_id, system_traits) VALUES
  (10, 'alice', '2024-03-19 09:41:22+00', 1, '{"$cohort": "c1"}'),
  (11, 'bob', '2024-03-19 09:41:22.123456+00', 1, '{}'),
  (12, repeat('x', 1025), '2024-03-19 10:00:00+00', 1, '{}'),
  (13, repeat('é', 600), '2024-03-19 10:00:00+00', 1, '{}'),
  (14, 'nan', '2024-03-19 10:00:00+00', 1, '{}'),
  (15, 'carol', '2023-12-31 23:59:59.000001+00', 1, '{}'),
  (20, 'dave', '2024-01-02 03:04:05.5+00', 2, '{}'),
  (21, 'alice', '2024-01-02 03:04:05+00', 2, '{}'),
  (30, 'eve', '2024-01-02 03:04:05+00', 4, '{}');

-- Traits; ids out of insertion order: the item lists them by id.
INSERT INTO environments_trait (id, identity_id, trait_key, value_type, boolean_value, integer_value, string_value, float_value, created_date) VALUES
  (9,  10, 'str',        'unicode', NULL, NULL, 'hello', NULL, now()),
  (2,  10, 'num_str',    'unicode', NULL, NULL, '007',   NULL, now()),
  (3,  10, 'float_str',  'unicode', NULL, NULL, '1.50',  NULL, now()),
  (4,  10, 'exp_str',    'unicode', NULL, NULL, '1e5',   NULL, now()),
  (5,  10, 'int',        'int',     NULL, 42,   NULL,    NULL, now()),
  (6,  10, 'bool',       'bool',    true, NULL, NULL,    NULL, now()),
  (7,  10, 'float',      'float',   NULL, NULL, NULL,    2.5,  now()),
  (8,  10, 'null_type',  NULL,      NULL, NULL, 'x',     NULL, now()),
  (10, 10, 'neg_zero',   'unicode', NULL, NULL, '-0',    NULL, now()),
  (11, 10, 'plus',       'unicode', NULL, NULL, '+1',    NULL, now()),
  (12, 10, 'whole_float','float',   NULL, NULL, NULL,    3.0,  now()),
  (13, 10, 'false',      'bool',    false, NULL, NULL,   NULL, now()),
  (14, 10, 'empty',      'unicode', NULL, NULL, '',      NULL, now()),
  (1,  10, 'first',      'unicode', NULL, NULL, 'by id', NULL, now()),
  (20, 11, 'big',        'unicode', NULL, NULL, '12345678901234567890123', NULL, now()),
  (21, 11, 'int_null',   'int',     NULL, NULL, NULL,    NULL, now()),
  (22, 11, 'tiny',       'float',   NULL, NULL, NULL,    0.1,  now()),
  (23, 11, 'huge',       'float',   NULL, NULL, NULL,    1e16, now()),
  (30, 14, 'bad',        'float',   NULL, NULL, NULL,    'NaN', now()),
  (40, 21, 'plan',       'unicode', NULL, NULL, 'gold',  NULL, now()),
  (50, 30, 'plan',       'unicode', NULL, NULL, 'x',     NULL, now());

-- Identity overrides of alice (v1 environment):
--  100 std live ("123" stays a string), 101 std live too (later duplicate: dropped),
--  102 other with live_from in the future, 103 no_value with NULL version (both not live),
--  104 mv live with three MV values, 105 other live but soft-deleted,
--  106 no_value live without a value row.
-- bob: 110 std live with a salt (django_id = salt), value int.
-- dave (v2 environment): 120 std with NULL version and live_from (live in v2),
--  121 other soft-deleted.
INSERT INTO features_featurestate (id, uuid, feature_id, environment_id, identity_id, enabled, version, live_from, mv_hashing_salt, deleted_at) VALUES
  (100, 'f0000000-0000-4000-8000-000000000100', 1, 1, 10, true,  1, now() - interval '1 day', NULL, NULL),
  (101, 'f0000000-0000-4000-8000-000000000101', 1, 1, 10, false, 2, now() - interval '1 hour', NULL, NULL),
  (102, 'f0000000-0000-4000-8000-000000000102', 3, 1, 10, true,  1, now() + interval '1 day', NULL, NULL),
  (103, 'f0000000-0000-4000-8000-000000000103', 4, 1, 10, true,  NULL, now() - interval '1 day', NULL, NULL),
  (104, 'f0000000-0000-4000-8000-000000000104', 2, 1, 10, false, 1, now() - interval '1 day', 0, NULL),
  (105, 'f0000000-0000-4000-8000-000000000105', 3, 1, 10, true,  1, now() - interval '1 day', NULL, now()),
  (106, 'f0000000-0000-4000-8000-000000000106', 4, 1, 10, true,  3, now() - interval '1 day', NULL, NULL),
  (110, 'f0000000-0000-4000-8000-000000000110', 1, 1, 11, true,  1, now() - interval '1 day', 555, NULL),
  (120, 'f0000000-0000-4000-8000-000000000120', 1, 2, 20, true,  NULL, NULL, NULL, NULL),
  (121, 'f0000000-0000-4000-8000-000000000121', 3, 2, 20, true,  NULL, NULL, NULL, now()),
  (130, 'f0000000-0000-4000-8000-000000000130', 5, 4, 30, true,  1, now() - interval '1 day', NULL, NULL);

INSERT INTO features_featurestatevalue (id, uuid, feature_state_id, type, boolean_value, integer_value, string_value) VALUES
  (1, 'e0000000-0000-4000-8000-000000000100', 100, 'unicode', NULL, NULL, '123'),
  (2, 'e0000000-0000-4000-8000-000000000101', 101, 'unicode', NULL, NULL, 'dropped'),
  (3, 'e0000000-0000-4000-8000-000000000104', 104, 'unicode', NULL, NULL, 'control'),
  (4, 'e0000000-0000-4000-8000-000000000110', 110, 'int', NULL, 5, NULL),
  (5, 'e0000000-0000-4000-8000-000000000120', 120, 'bool', true, NULL, NULL),
  (6, 'e0000000-0000-4000-8000-000000000102', 102, NULL, NULL, NULL, 'untyped');

-- MV values of 104; ids out of option order: the item lists them by id.
INSERT INTO multivariate_multivariatefeaturestatevalue (id, uuid, feature_state_id, multivariate_feature_option_id, percentage_allocation) VALUES
  (201, 'b0000000-0000-4000-8000-000000000201', 104, 1, 30),
  (202, 'b0000000-0000-4000-8000-000000000202', 104, 2, 20),
  (199, 'b0000000-0000-4000-8000-000000000199', 104, 3, 12.5);
