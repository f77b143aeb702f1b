"""The exact-duplicate key (warehouse.ingest.content_hash_sql, what ingest stores) is md5 of the
text's UTF-8 bytes, as `hashlib` computes it, NUL characters and all.

The folded key (folded_key_sql: does a second row with a stored id hold the same document?) and
its Python reference (folded_key) agree on random text built from the characters the definition
treats apart: each ASCII whitespace, other whitespace and space separators (DuckDB's trim removes
them at the ends of a folded text), combining marks, Hangul jamo, NUL. The random test found two
faults, fixed: DuckDB's nfc_normalize stopped at a NUL, so 'é\\0abc' and 'é\\0xyz' shared a key,
and the reference trimmed only U+0020."""

from __future__ import annotations

import hashlib
import json

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.ingest import content_hash, content_hash_sql, folded_key, folded_key_sql

_PIECES = [" ", "  ", "\t", "\n", "\r\n", "\x0c", "\x0b", "\u00a0", "\u3000", "\u2028", "\u205f", "\u1680", "\u2000",
           "\u200a", "\u202f", "\u0085", "\ufeff", "a", "B", "é", "e\u0301", "\u1100\u1161", "\u304b\u3099", "ß", "数据", "🙂", "x" * 9, "\x00", "\\", "'"]


def _sql_keys(texts: list[str], key=folded_key_sql) -> list[str]:
    con = duckdb.connect()
    con.register("t", pa.table({"text": pa.array(texts, pa.string())}))
    return [r[0] for r in con.execute(f"SELECT {key('text')} FROM t").fetchall()]


_TEXTS = st.lists(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(_TEXTS)
def test_the_folded_key_and_its_reference_agree(texts):
    assert _sql_keys(texts) == [folded_key(t) for t in texts]


@settings(max_examples=100, deadline=None)
@given(_TEXTS)
def test_the_stored_key_is_md5_of_the_bytes(texts):
    want = [hashlib.md5(t.encode("utf-8")).hexdigest() for t in texts]
    assert _sql_keys(texts, content_hash_sql) == want == [content_hash(t) for t in texts]


def test_a_nul_character_does_not_cut_the_key_short():
    texts = ["e\u0301\x00abc", "e\u0301\x00xyz", "e\u0301 abc", " \u00a0a\u3000 ", "a"]
    keys = _sql_keys(texts)
    assert len(set(keys)) == 4 and keys[3] == keys[4]  # the space separators trimmed like spaces
    assert keys == [folded_key(t) for t in texts]


def test_a_warehouse_of_folded_keys_is_migrated_to_md5_keys(tmp_path):
    """Schema 19 rewrites the keys stored before it (the folded key). Unmigrated, an old document
    and a byte copy of it ingested now would have different keys, and dedup would not see the
    exact duplicate."""
    from dedup.config import DedupConfig
    from flows.dedup_task import dedup_corpus
    from warehouse.db import connect
    from warehouse.ingest import IngestConfig, ingest_paths

    texts = ["Hello  World, the first Document", "数据清洗 ภาษาไทย\tCafé", "plain text"]
    old = tmp_path / "old.jsonl"
    old.write_text("".join(json.dumps({"id": f"o{i}", "text": t}, ensure_ascii=False) + "\n"
                           for i, t in enumerate(texts)))
    db = str(tmp_path / "w.duckdb")
    con = connect(db)
    ingest_paths(con, [old], IngestConfig("c"))
    # as schema 18 left it: folded keys, no record of migration 19
    con.execute(f"UPDATE documents SET content_hash = {folded_key_sql('text')}")
    con.execute("DELETE FROM schema_version WHERE version = 19")
    assert con.execute("SELECT count(*) FROM documents WHERE content_hash <> md5(text)").fetchone()[0] == 2
    con.close()
    con = connect(db)  # a writer migrates
    assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 19
    stored = dict(con.execute("SELECT ext_id, content_hash FROM documents").fetchall())
    assert stored == {f"o{i}": content_hash(t) for i, t in enumerate(texts)}
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"id": "n0", "text": texts[0]}) + "\n")
    ingest_paths(con, [new], IngestConfig("c"))
    con.close()
    r = dedup_corpus(db, "c", DedupConfig())
    assert (r["exact_dropped"], r["near_dropped"]) == (1, 0)
