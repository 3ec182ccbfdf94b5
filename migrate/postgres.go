package migrate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fledge-flags/fledge/identity"
)

// PostgresConfig selects what NewPostgres reads.
type PostgresConfig struct {
	// DSN is a libpq connection string or postgres:// URL of Core's
	// database (a read-only role is enough).
	DSN string
	// ProjectID migrates every non-deleted environment of the project;
	// alternatively EnvironmentKeys names environments by client key.
	ProjectID       int64
	EnvironmentKeys []string
	// BatchSize is how many identities each chunk reads (default 2000,
	// as Core's migrator).
	BatchSize int
}

const defaultBatchSize = 2000

// Postgres reads identities from Core's database (migrate.md §2): per chunk
// of BatchSize identities, four queries in one repeatable-read, read-only
// transaction, with liveness and de-duplication of overrides done in SQL.
// It is not for concurrent use (Run calls it from one goroutine).
type Postgres struct {
	conn *pgx.Conn
	cfg  PostgresConfig
	desc string
	// Version-dependent columns (NULL when the column does not exist).
	saltCol, optionKeyCol string
}

// NewPostgres connects to Core's database and probes its schema version.
func NewPostgres(ctx context.Context, cfg PostgresConfig) (*Postgres, error) {
	if (cfg.ProjectID == 0) == (len(cfg.EnvironmentKeys) == 0) {
		return nil, errors.New("postgres source: give a project id or environment keys (not both)")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = defaultBatchSize
	}
	pc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres source: parsing the connection string: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres source: connecting to %s:%d: %w", pc.Host, pc.Port, err)
	}
	p := &Postgres{conn: conn, cfg: cfg, saltCol: "NULL::integer", optionKeyCol: "NULL::text"}
	scope := "project " + strconv.FormatInt(cfg.ProjectID, 10)
	if cfg.ProjectID == 0 {
		scope = "environments " + strings.Join(cfg.EnvironmentKeys, ",")
	}
	p.desc = fmt.Sprintf("postgres %s:%d/%s %s", pc.Host, pc.Port, pc.Database, scope)
	has := func(table, column string) (bool, error) {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`, table, column).Scan(&n)
		return n > 0, err
	}
	if ok, err := has("features_featurestate", "mv_hashing_salt"); err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("postgres source: probing the schema: %w", err)
	} else if ok {
		p.saltCol = "fs.mv_hashing_salt"
	}
	if ok, err := has("multivariate_multivariatefeatureoption", "key"); err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("postgres source: probing the schema: %w", err)
	} else if ok {
		p.optionKeyCol = "o.key"
	}
	return p, nil
}

// Describe implements Source.
func (p *Postgres) Describe() string { return p.desc }

// Close implements Source.
func (p *Postgres) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.conn.Close(ctx)
}

// Environments implements Source.
func (p *Postgres) Environments(ctx context.Context) ([]Environment, error) {
	var rows pgx.Rows
	var err error
	if p.cfg.ProjectID != 0 {
		rows, err = p.conn.Query(ctx, `SELECT id, api_key, name, use_v2_feature_versioning
			FROM environments_environment WHERE project_id = $1 AND deleted_at IS NULL ORDER BY id`, p.cfg.ProjectID)
	} else {
		rows, err = p.conn.Query(ctx, `SELECT id, api_key, name, use_v2_feature_versioning
			FROM environments_environment WHERE api_key = ANY($1) AND deleted_at IS NULL ORDER BY id`, p.cfg.EnvironmentKeys)
	}
	if err != nil {
		return nil, fmt.Errorf("querying environments: %w", err)
	}
	envs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Environment, error) {
		var e Environment
		err := r.Scan(&e.ID, &e.APIKey, &e.Name, &e.V2)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading environments: %w", err)
	}
	if p.cfg.ProjectID == 0 {
		found := map[string]bool{}
		for _, e := range envs {
			found[e.APIKey] = true
		}
		for _, k := range p.cfg.EnvironmentKeys {
			if !found[k] {
				return nil, fmt.Errorf("no environment with client key %q (or it is deleted)", k)
			}
		}
	} else if len(envs) == 0 {
		return nil, fmt.Errorf("project %d has no environments (or does not exist)", p.cfg.ProjectID)
	}
	return envs, nil
}

// Count implements Source.
func (p *Postgres) Count(ctx context.Context, env Environment, after int64) (int64, error) {
	var n int64
	err := p.conn.QueryRow(ctx, `SELECT count(*) FROM environments_identity WHERE environment_id = $1 AND id > $2`,
		env.ID, after).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting identities: %w", err)
	}
	return n, nil
}

// Identities implements Source: keyset pagination on the identity id.
func (p *Postgres) Identities(ctx context.Context, env Environment, after int64, fn func([]Record) error) error {
	for {
		batch, err := p.chunk(ctx, env, after)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		after = batch[len(batch)-1].ID
		if err := fn(batch); err != nil {
			return err
		}
	}
}

func (p *Postgres) chunk(ctx context.Context, env Environment, after int64) ([]Record, error) {
	tx, err := p.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("starting a read transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()

	// 1. Identities.
	rows, err := tx.Query(ctx, `SELECT id, identifier, created_date FROM environments_identity
		WHERE environment_id = $1 AND id > $2 ORDER BY id LIMIT $3`, env.ID, after, p.cfg.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("querying identities after id %d: %w", after, err)
	}
	var recs []Record
	var ids []int64
	index := map[int64]int{}
	var (
		id         int64
		identifier string
		created    time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &identifier, &created}, func() error {
		index[id] = len(recs)
		ids = append(ids, id)
		recs = append(recs, Record{ID: id, Identifier: identifier, Identity: &identity.Identity{
			EnvironmentAPIKey: env.APIKey,
			Identifier:        identifier,
			CreatedDate:       isoformat(created),
			DjangoID:          int64p(id),
		}})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading identities after id %d: %w", after, err)
	}
	if len(recs) == 0 {
		return nil, nil
	}

	// 2. Traits, in trait id order.
	rows, err = tx.Query(ctx, `SELECT identity_id, trait_key, value_type, boolean_value, integer_value, string_value, float_value
		FROM environments_trait WHERE identity_id = ANY($1::bigint[]) ORDER BY id`, ids)
	if err != nil {
		return nil, fmt.Errorf("querying traits: %w", err)
	}
	var (
		identityID int64
		tc         traitColumns
	)
	_, err = pgx.ForEachRow(rows, []any{&identityID, &tc.Key, &tc.ValueType, &tc.BooleanValue, &tc.IntegerValue, &tc.StringValue, &tc.FloatValue}, func() error {
		r := &recs[index[identityID]]
		if r.Skip != "" {
			return nil
		}
		v, err := traitValue(tc)
		if err != nil {
			r.Skip, r.Identity = ReasonNonFinite, nil
			return nil
		}
		r.Identity.Traits = append(r.Identity.Traits, identity.Trait{Key: tc.Key, Value: v})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading traits: %w", err)
	}

	// 3. Live identity overrides, the lowest id per feature, in id order.
	rows, err = tx.Query(ctx, `SELECT id, identity_id, feature_id, name, type, enabled, uuid, django_id,
			vtype, boolean_value, integer_value, string_value
		FROM (SELECT DISTINCT ON (fs.identity_id, fs.feature_id)
				fs.id, fs.identity_id, fs.feature_id, f.name, f.type, fs.enabled, fs.uuid::text AS uuid,
				CASE WHEN `+p.saltCol+` IS NOT NULL AND `+p.saltCol+` <> 0 THEN `+p.saltCol+` ELSE fs.id END AS django_id,
				v.type AS vtype, v.boolean_value, v.integer_value, v.string_value
			FROM features_featurestate fs
			JOIN environments_environment e ON e.id = fs.environment_id
			JOIN features_feature f ON f.id = fs.feature_id
			LEFT JOIN features_featurestatevalue v ON v.feature_state_id = fs.id
			WHERE fs.identity_id = ANY($1::bigint[]) AND fs.deleted_at IS NULL
				AND (e.use_v2_feature_versioning
					OR (fs.version IS NOT NULL AND fs.live_from IS NOT NULL AND fs.live_from <= now()))
			ORDER BY fs.identity_id, fs.feature_id, fs.id) live
		ORDER BY id`, ids)
	if err != nil {
		return nil, fmt.Errorf("querying identity overrides: %w", err)
	}
	type overrideRow struct {
		fsID, identityID int64
		o                identity.Override
	}
	var ovs []overrideRow
	var fsIDs []int64
	var (
		fsID, djangoID int64
		ov             identity.Override
		vc             valueColumns
	)
	_, err = pgx.ForEachRow(rows, []any{&fsID, &identityID, &ov.Feature.ID, &ov.Feature.Name, &ov.Feature.Type, &ov.Enabled,
		&ov.FeatureStateUUID, &djangoID, &vc.Type, &vc.BooleanValue, &vc.IntegerValue, &vc.StringValue}, func() error {
		o := ov
		o.DjangoID = int64p(djangoID)
		o.Value = valueJSON(vc)
		ovs = append(ovs, overrideRow{fsID: fsID, identityID: identityID, o: o})
		fsIDs = append(fsIDs, fsID)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading identity overrides: %w", err)
	}

	// 4. Multivariate values of the kept overrides, in id order.
	mvs := map[int64][]mvValue{}
	if len(fsIDs) > 0 {
		rows, err = tx.Query(ctx, `SELECT mv.id, mv.feature_state_id, mv.uuid::text, mv.percentage_allocation,
				o.id, `+p.optionKeyCol+`, o.type, o.boolean_value, o.integer_value, o.string_value
			FROM multivariate_multivariatefeaturestatevalue mv
			JOIN multivariate_multivariatefeatureoption o ON o.id = mv.multivariate_feature_option_id
			WHERE mv.feature_state_id = ANY($1::bigint[]) ORDER BY mv.id`, fsIDs)
		if err != nil {
			return nil, fmt.Errorf("querying multivariate values: %w", err)
		}
		var (
			mv   mvValue
			pct  float64
			key  *string
			ovc  valueColumns
			fsid int64
		)
		_, err = pgx.ForEachRow(rows, []any{&mv.ID, &fsid, &mv.MvFsValueUUID, &pct, &mv.MultivariateFeatureOption.ID, &key,
			&ovc.Type, &ovc.BooleanValue, &ovc.IntegerValue, &ovc.StringValue}, func() error {
			v := mv
			v.PercentageAllocation = pyFloat(pct)
			if key != nil {
				k := *key
				v.MultivariateFeatureOption.Key = &k
			} else {
				v.MultivariateFeatureOption.Key = nil
			}
			v.MultivariateFeatureOption.Value = valueJSON(ovc)
			mvs[fsid] = append(mvs[fsid], v)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading multivariate values: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("ending the read transaction: %w", err)
	}

	for _, row := range ovs {
		r := &recs[index[row.identityID]]
		if r.Skip != "" {
			continue
		}
		o := row.o
		mv, err := encodeMV(mvs[row.fsID])
		if err != nil { // a non-finite percentage: Core's validation fails
			r.Skip, r.Identity = ReasonInvalid, nil
			continue
		}
		o.MultivariateValues = mv
		r.Identity.Overrides = append(r.Identity.Overrides, o)
	}
	return recs, nil
}
