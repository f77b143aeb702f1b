"""Versioned schema with forward-only migrations.

Each migration is a list of statements applied in one transaction; `schema_version` records
which ran. Later capabilities append migrations; an existing one is never edited.
"""

from __future__ import annotations

import duckdb

from warehouse.sql import one

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "corpus store, quarantine, run log",
        [
            """CREATE TABLE IF NOT EXISTS runs (
                run_id VARCHAR PRIMARY KEY,
                stage VARCHAR NOT NULL,
                corpus VARCHAR,
                inputs_hash VARCHAR NOT NULL,
                config JSON,
                counts_in BIGINT,
                counts_out BIGINT,
                started_at TIMESTAMP NOT NULL,
                finished_at TIMESTAMP,
                status VARCHAR NOT NULL,
                message VARCHAR,
                details JSON)""",
            """CREATE TABLE IF NOT EXISTS sources (
                corpus VARCHAR NOT NULL,
                path VARCHAR NOT NULL,
                file_hash VARCHAR NOT NULL,
                format VARCHAR NOT NULL,
                size_bytes BIGINT NOT NULL,
                rows_read BIGINT NOT NULL,
                rows_new BIGINT NOT NULL,
                rows_quarantined BIGINT NOT NULL,
                config JSON,
                ingested_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
                PRIMARY KEY (corpus, file_hash))""",
            """CREATE TABLE IF NOT EXISTS documents (
                doc_id BIGINT NOT NULL,
                corpus VARCHAR NOT NULL,
                ext_id VARCHAR NOT NULL,
                text VARCHAR NOT NULL,
                content_hash VARCHAR NOT NULL,
                n_chars INTEGER NOT NULL,
                source_path VARCHAR NOT NULL,
                source_line BIGINT NOT NULL,
                ingested_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
            """CREATE TABLE IF NOT EXISTS annotations (
                corpus VARCHAR NOT NULL,
                ext_id VARCHAR NOT NULL,
                annotator VARCHAR,
                label VARCHAR NOT NULL,
                source_path VARCHAR NOT NULL,
                source_line BIGINT NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS quarantine (
                corpus VARCHAR NOT NULL,
                path VARCHAR NOT NULL,
                line BIGINT NOT NULL,
                field VARCHAR NOT NULL,
                reason VARCHAR NOT NULL,
                raw VARCHAR,
                quarantined_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
        ],
    ),
    (
        2,
        "deduplication: signatures, pairs, decisions",
        [
            """CREATE TABLE IF NOT EXISTS dedup_signatures (
                corpus VARCHAR NOT NULL,
                doc_id BIGINT NOT NULL,
                sig_key VARCHAR NOT NULL,
                n_shingles INTEGER NOT NULL,
                sig BLOB NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS dedup_pairs (
                corpus VARCHAR NOT NULL,
                config_hash VARCHAR NOT NULL,
                doc_a BIGINT NOT NULL,
                doc_b BIGINT NOT NULL,
                similarity DOUBLE NOT NULL,
                kind VARCHAR NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS dedup_decisions (
                corpus VARCHAR NOT NULL,
                config_hash VARCHAR NOT NULL,
                doc_id BIGINT NOT NULL,
                keep BOOLEAN NOT NULL,
                reason VARCHAR NOT NULL,
                matched_doc BIGINT,
                similarity DOUBLE,
                cluster_id BIGINT)""",
        ],
    ),
    (
        3,
        "scaling: observations and fits",
        [
            """CREATE TABLE IF NOT EXISTS scaling_observations (
                inputs_hash VARCHAR NOT NULL,
                source VARCHAR NOT NULL,
                row_no INTEGER NOT NULL,
                N DOUBLE NOT NULL,
                D DOUBLE NOT NULL,
                loss DOUBLE NOT NULL,
                U DOUBLE,
                weight DOUBLE,
                run VARCHAR)""",
            """CREATE TABLE IF NOT EXISTS scaling_fits (
                name VARCHAR NOT NULL,
                law VARCHAR NOT NULL,
                inputs_hash VARCHAR NOT NULL,
                config JSON NOT NULL,
                params JSON NOT NULL,
                ci JSON,
                poorly_determined JSON,
                objective DOUBLE NOT NULL,
                n_points INTEGER NOT NULL,
                n_at_best INTEGER,
                converged BOOLEAN,
                seconds DOUBLE,
                created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
        ],
    ),
    (
        4,
        "scaling: bootstrap samples kept with a fit (plans get CIs)",
        ["ALTER TABLE scaling_fits ADD COLUMN IF NOT EXISTS samples JSON"],
    ),
    (
        5,
        "curation: label agreement, consensus, suspects, conflicts; curriculum order",
        [
            """CREATE TABLE IF NOT EXISTS label_agreement (
                corpus VARCHAR NOT NULL, report JSON NOT NULL,
                created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
            """CREATE TABLE IF NOT EXISTS label_consensus (
                corpus VARCHAR NOT NULL, ext_id VARCHAR NOT NULL, n_ratings INTEGER NOT NULL,
                majority VARCHAR, majority_confidence DOUBLE, majority_tie BOOLEAN,
                dawid_skene VARCHAR, ds_confidence DOUBLE)""",
            """CREATE TABLE IF NOT EXISTS label_suspects (
                corpus VARCHAR NOT NULL, ext_id VARCHAR NOT NULL, given VARCHAR NOT NULL,
                suggested VARCHAR NOT NULL, score DOUBLE NOT NULL, rank INTEGER NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS label_conflicts (
                corpus VARCHAR NOT NULL, group_id BIGINT NOT NULL, kind VARCHAR NOT NULL,
                ext_ids JSON NOT NULL, labels JSON NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS curriculum (
                corpus VARCHAR NOT NULL, doc_id BIGINT NOT NULL, position BIGINT NOT NULL,
                pacing_step INTEGER NOT NULL, difficulty DOUBLE NOT NULL, percentile DOUBLE NOT NULL,
                scores JSON, order_kind VARCHAR NOT NULL, config_hash VARCHAR NOT NULL)""",
        ],
    ),
    (
        6,
        "evaluation: eval sets, runs, per-item results",
        [
            """CREATE TABLE IF NOT EXISTS eval_items (
                set_name VARCHAR NOT NULL, set_hash VARCHAR NOT NULL, id VARCHAR NOT NULL, input VARCHAR NOT NULL,
                target VARCHAR NOT NULL, slices JSON, meta JSON,
                created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
            """CREATE TABLE IF NOT EXISTS eval_runs (
                run_id VARCHAR NOT NULL, set_name VARCHAR NOT NULL, set_hash VARCHAR NOT NULL, model VARCHAR NOT NULL,
                metric VARCHAR NOT NULL, git_sha VARCHAR, summary JSON,
                created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
            """CREATE TABLE IF NOT EXISTS eval_results (
                run_id VARCHAR NOT NULL, id VARCHAR NOT NULL, prediction VARCHAR, score DOUBLE NOT NULL,
                passed BOOLEAN NOT NULL)""",
        ],
    ),
    (
        7,
        "throughput calibrations",
        [
            """CREATE TABLE IF NOT EXISTS calibrations (
                gpu VARCHAR, device_name VARCHAR NOT NULL, torch_version VARCHAR NOT NULL, size VARCHAR NOT NULL,
                config JSON NOT NULL, params BIGINT NOT NULL, flops_per_token DOUBLE NOT NULL,
                tokens_per_s DOUBLE NOT NULL, flops_per_s DOUBLE NOT NULL, peak_flops DOUBLE NOT NULL,
                peak_source VARCHAR NOT NULL, mfu DOUBLE NOT NULL,
                created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
        ],
    ),
    (
        8,
        "warehouse identity (a new file is a new warehouse, whatever its path)",
        [
            "CREATE TABLE IF NOT EXISTS warehouse_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
            ("INSERT INTO warehouse_meta SELECT 'warehouse_id', gen_random_uuid()::VARCHAR "
            "WHERE NOT EXISTS (SELECT 1 FROM warehouse_meta WHERE key = 'warehouse_id')"),
        ],
    ),
    (
        9,
        "sources keyed on (file hash, field mapping): re-ingesting with corrected options works",
        [
            """CREATE TABLE sources_v9 (
                corpus VARCHAR NOT NULL,
                path VARCHAR NOT NULL,
                file_hash VARCHAR NOT NULL,
                format VARCHAR NOT NULL,
                size_bytes BIGINT NOT NULL,
                rows_read BIGINT NOT NULL,
                rows_new BIGINT NOT NULL,
                rows_quarantined BIGINT NOT NULL,
                config JSON,
                ingested_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
                mapping VARCHAR NOT NULL,
                PRIMARY KEY (corpus, file_hash, mapping))""",
            "INSERT INTO sources_v9 SELECT *, coalesce(config::VARCHAR, '') FROM sources",
            "DROP TABLE sources",
            "ALTER TABLE sources_v9 RENAME TO sources",
        ],
    ),
    (
        10,
        "honest run log: the process that owns a run (pid, host), and the run a skipped one reuses",
        [
            "ALTER TABLE runs ADD COLUMN pid INTEGER",
            "ALTER TABLE runs ADD COLUMN host VARCHAR",
            "ALTER TABLE runs ADD COLUMN reuses VARCHAR",
        ],
    ),
    (
        11,
        ("dedup signatures as UINTEGER[] lists (written 2-3x faster than BLOBs); the old ones are dropped: "
         "they are a cache of the documents, and BLOBs written before shingle version 2 were stale"),
        [
            "DROP TABLE IF EXISTS dedup_signatures",
            """CREATE TABLE dedup_signatures (
                corpus VARCHAR NOT NULL,
                doc_id BIGINT NOT NULL,
                sig_key VARCHAR NOT NULL,
                n_shingles INTEGER NOT NULL,
                sig UINTEGER[] NOT NULL)""",
        ],
    ),
    (
        12,
        ("dedup signatures stored uncompressed: MinHash values are uniform random, so DuckDB's compression "
         "analysis found nothing to save and cost a quarter of every signature commit"),
        [
            """CREATE TABLE dedup_signatures_v12 (
                corpus VARCHAR NOT NULL,
                doc_id BIGINT NOT NULL,
                sig_key VARCHAR NOT NULL,
                n_shingles INTEGER NOT NULL,
                sig UINTEGER[] NOT NULL USING COMPRESSION uncompressed)""",
            "INSERT INTO dedup_signatures_v12 SELECT corpus, doc_id, sig_key, n_shingles, sig FROM dedup_signatures",
            "DROP TABLE dedup_signatures",
            "ALTER TABLE dedup_signatures_v12 RENAME TO dedup_signatures",
        ],
    ),
    (
        13,
        "format marker: this file is a Taomi warehouse (Taomi opens no other DuckDB file)",
        [
            "CREATE TABLE IF NOT EXISTS warehouse_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
            "INSERT INTO warehouse_meta VALUES ('format', 'taomi-warehouse') ON CONFLICT DO NOTHING",
        ],
    ),
    (
        14,
        "document metadata: every field of a row besides text, id, label and annotator, as JSON",
        ["ALTER TABLE documents ADD COLUMN IF NOT EXISTS meta JSON"],
    ),
    (
        15,
        "token counts per document and tokenizer",
        ["""CREATE TABLE IF NOT EXISTS doc_tokens (doc_id BIGINT NOT NULL, tokenizer VARCHAR NOT NULL,
                n_tokens BIGINT NOT NULL, PRIMARY KEY (doc_id, tokenizer))"""],
    ),
    (
        16,
        "registered eval sets, their n-gram index, contamination scans and hits; failure-tracing index",
        [
            """CREATE TABLE IF NOT EXISTS evalset_registry (set_name VARCHAR PRIMARY KEY, set_hash VARCHAR NOT NULL,
                source_path VARCHAR, format VARCHAR, n_items INTEGER, added_at TIMESTAMP DEFAULT current_timestamp)""",
            """CREATE TABLE IF NOT EXISTS eval_index (set_hash VARCHAR NOT NULL, n INTEGER NOT NULL,
                rule VARCHAR NOT NULL, item_id VARCHAR NOT NULL, pos INTEGER NOT NULL, h UBIGINT NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS eval_index_items (set_hash VARCHAR NOT NULL, n INTEGER NOT NULL,
                rule VARCHAR NOT NULL, item_id VARCHAR NOT NULL, status VARCHAR NOT NULL,
                PRIMARY KEY (set_hash, n, rule, item_id))""",
            """CREATE TABLE IF NOT EXISTS contamination_scans (corpus VARCHAR NOT NULL, set_hash VARCHAR NOT NULL,
                n INTEGER NOT NULL, rule VARCHAR NOT NULL, corpus_version VARCHAR NOT NULL, n_docs BIGINT,
                docs_flagged BIGINT, seconds DOUBLE, finished_at TIMESTAMP DEFAULT current_timestamp,
                PRIMARY KEY (corpus, set_hash, n, rule, corpus_version))""",
            """CREATE TABLE IF NOT EXISTS contamination_hits (corpus VARCHAR NOT NULL, set_hash VARCHAR NOT NULL,
                n INTEGER NOT NULL, rule VARCHAR NOT NULL, corpus_version VARCHAR NOT NULL, doc_id BIGINT NOT NULL,
                item_id VARCHAR NOT NULL, item_pos INTEGER NOT NULL, doc_pos INTEGER NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS trace_index (corpus VARCHAR NOT NULL, corpus_version VARCHAR NOT NULL,
                n_docs BIGINT NOT NULL, idf DOUBLE[] NOT NULL, PRIMARY KEY (corpus, corpus_version))""",
            """CREATE TABLE IF NOT EXISTS trace_postings (corpus VARCHAR NOT NULL, corpus_version VARCHAR NOT NULL,
                feature INTEGER NOT NULL, doc_id BIGINT NOT NULL, w FLOAT NOT NULL)""",
        ],
    ),
    (
        17,
        "each document's dominant script and language",
        ["""CREATE TABLE IF NOT EXISTS doc_language (doc_id BIGINT PRIMARY KEY, script VARCHAR NOT NULL,
                language VARCHAR NOT NULL, detector VARCHAR NOT NULL)"""],
    ),
    (
        18,
        "distributed dedup: Parquet shards of a corpus and their signature files (the manifest)",
        [
            """CREATE TABLE IF NOT EXISTS dedup_shards (corpus VARCHAR NOT NULL, shard_no INTEGER NOT NULL,
                path VARCHAR NOT NULL, first_id BIGINT NOT NULL, last_id BIGINT NOT NULL, n_docs BIGINT NOT NULL,
                fingerprint VARCHAR NOT NULL, group_first_ids BIGINT[] NOT NULL, PRIMARY KEY (corpus, shard_no))""",
            """CREATE TABLE IF NOT EXISTS dedup_shard_signatures (corpus VARCHAR NOT NULL, sig_key VARCHAR NOT NULL,
                fingerprint VARCHAR NOT NULL, path VARCHAR NOT NULL, n_docs BIGINT NOT NULL,
                PRIMARY KEY (corpus, sig_key, fingerprint))""",
        ],
    ),
    (
        19,
        ("the exact-duplicate key is md5 of the text as stored (byte-identical copies); it folded case, "
         "whitespace and NFC before, which dedup's MinHash folding already covers (a folded copy is a "
         "near duplicate at Jaccard 1.0). Stored keys are rewritten, so a re-ingest of unchanged files "
         "changes nothing; dedup, contamination and tracing results are recomputed once"),
        ["UPDATE documents SET content_hash = md5(text) WHERE content_hash <> md5(text)"],
    ),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]
FORMAT_ID = "taomi-warehouse"  # warehouse_meta's 'format' row: what makes a DuckDB file Taomi's
# Files made before the marker (schema 1-12) are recognised by their first migration's record.
_LEGACY_FIRST = (1, "corpus store, quarantine, run log")


class SchemaNewer(RuntimeError):
    """The file was written by a newer Taomi: this one must not touch it."""


def warehouse_kind(con: duckdb.DuckDBPyConnection) -> str:
    """'taomi' (the marker), 'legacy' (a Taomi file from before the marker) or 'foreign' (any
    other DuckDB file, an empty one included). Reads the catalog only: safe on a read-only open."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall()}
    if "warehouse_meta" in tables and one(con, "SELECT 1 FROM warehouse_meta WHERE key = 'format' AND value = ?",
                                          [FORMAT_ID]):
        return "taomi"
    if {"schema_version", "runs", "documents"} <= tables:
        row = one(con, "SELECT version, description FROM schema_version WHERE version = 1")
        if row is not None and tuple(row) == _LEGACY_FIRST:
            return "legacy"
    return "foreign"


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
        "description VARCHAR, applied_at TIMESTAMP DEFAULT current_timestamp)"
    )
    row = one(con, "SELECT coalesce(max(version), 0) FROM schema_version")
    return int(row[0])


def current_version_read_only(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of a file opened read-only (0 when it has no version table yet)."""
    if not one(con, "SELECT 1 FROM duckdb_tables() WHERE table_name = 'schema_version'"):
        return 0
    return int(one(con, "SELECT coalesce(max(version), 0) FROM schema_version")[0])


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply every migration newer than the file's version; return the resulting version."""
    version = current_version(con)
    if version > SCHEMA_VERSION:
        raise SchemaNewer(f"written by a newer Taomi (schema version {version}; this Taomi knows up to "
                          f"{SCHEMA_VERSION}); upgrade Taomi to write to it (read-only commands still work)")
    for number, description, statements in MIGRATIONS:
        if number <= version:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for sql in statements:
                con.execute(sql)
            con.execute("INSERT INTO schema_version (version, description) VALUES (?, ?)", [number, description]).fetchall()
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        version = number
    return version
