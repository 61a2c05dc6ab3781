"""The tolerant staging readers keep every input row, readable or not."""

import json

import pyarrow as pa
import pytest
import pyarrow.parquet as pq

from lore_ml.raw_io import find_drop_files, stage_drop

FIELDS = ("query", "item_id", "label")


def staged_rows(tmp_path, *files):
    result = stage_drop(list(files), FIELDS, str(tmp_path / "staged.parquet"))
    rows = pq.read_table(tmp_path / "staged.parquet").to_pylist()
    assert result.rows == len(rows)
    return result, rows


def test_csv_keeps_malformed_rows_and_invalid_utf8(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes(b"query,item_id,label\nred shoes,it1,L4\nonly two,fields\nbad \xff bytes,it2,L1\n,it3,L2\n")
    result, rows = staged_rows(tmp_path, path)
    assert result.rows == 4 and result.unreadable == 2
    by_error = {r["_error"]: r for r in rows}
    assert "malformed CSV row (wrong number of fields)" in by_error
    assert by_error["malformed CSV row (wrong number of fields)"]["_record"] == "only two,fields"
    assert "query: invalid UTF-8" in by_error
    assert [r["query"] for r in rows if r["_error"] is None] == ["red shoes", None]  # empty field = missing


def test_jsonl_keeps_broken_lines(tmp_path):
    path = tmp_path / "c.jsonl"
    good = {"query": "q", "item_id": 7, "label": "L3", "extra": 1}
    path.write_bytes(json.dumps(good).encode() + b"\n{not json\n[1,2]\n" + b'{"query": "\xc3\x28"}\n')
    result, rows = staged_rows(tmp_path, path)
    assert result.rows == 4 and result.unreadable == 3
    assert rows[0]["item_id"] == "7" and rows[0]["_error"] is None  # numbers become their JSON text
    assert rows[1]["_error"].startswith("malformed JSON") and rows[1]["_record"] == "{not json"
    assert rows[2]["_error"] == "malformed JSON: not an object"
    assert rows[3]["_error"].startswith("invalid UTF-8")
    assert [r["_line"] for r in rows] == [0, 1, 2, 3]


def test_parquet_columns_become_strings_and_missing_ones_null(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"query": ["a", None], "item_id": pa.array([1, 2], pa.int64())}), path)
    _, rows = staged_rows(tmp_path, path)
    assert [(r["query"], r["item_id"], r["label"]) for r in rows] == [("a", "1", None), (None, "2", None)]


def test_drop_files_are_found_in_stable_order_by_path_or_uri(tmp_path):
    for name in ("b.csv", "a.jsonl", "notes.txt", "c.parquet"):
        (tmp_path / name).write_text("")
    expected = [str(tmp_path / name) for name in ("a.jsonl", "b.csv", "c.parquet")]
    for folder in (str(tmp_path), tmp_path.as_uri()):
        fs, files = find_drop_files(folder)
        assert files == expected and fs.get_file_info(files[0]).size == 0
    assert find_drop_files(str(tmp_path / "missing"))[1] == []


def test_a_drop_on_storage_stages_like_a_local_one(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes(b"query,item_id,label\nred shoes,it1,L4\nonly two,fields\n")
    fs, files = find_drop_files(tmp_path.as_uri())
    result = stage_drop(files, FIELDS, str(tmp_path / "staged.parquet"), fs=fs)
    rows = pq.read_table(tmp_path / "staged.parquet").to_pylist()
    assert result.rows == 2 and result.unreadable == 1
    assert [(r["query"], r["_source_file"]) for r in rows] == [("red shoes", "labels.csv"), (None, "labels.csv")]


def test_empty_files_have_no_rows_and_a_broken_file_is_one_unreadable_row(tmp_path):
    for name in ("empty.csv", "empty.jsonl", "empty.parquet"):
        (tmp_path / name).write_bytes(b"")
    good = tmp_path / "good.csv"
    good.write_bytes(b"query,item_id,label\nred shoes,it1,L4\n")
    broken = tmp_path / "broken.parquet"
    pq.write_table(pa.table({"query": ["a"] * 1000}), broken)
    broken.write_bytes(broken.read_bytes()[:200])  # truncated: no footer
    result, rows = staged_rows(tmp_path, *(tmp_path / n for n in ("empty.csv", "empty.jsonl", "empty.parquet")),
                               broken, good)
    assert result.rows == 2 and result.unreadable == 1
    assert rows[0]["_error"].startswith("unreadable file after 0 rows: ") and rows[0]["_record"] == str(broken)
    assert (rows[1]["query"], rows[1]["_source_file"]) == ("red shoes", "good.csv")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # pyarrow reports its decode error
def test_a_malformed_csv_row_that_is_not_utf8_keeps_the_rest_of_the_file(tmp_path):
    # Arrow's CSV reader cannot hand such a row to the bad-row handler and gives up on the file.
    path = tmp_path / "labels.csv"
    path.write_bytes(b"query,item_id,label\nred shoes,it1,L4\nbad \xff,it2,L1,extra\n\n\"a, b\",it3,\n")
    result, rows = staged_rows(tmp_path, path)
    assert result.rows == 3 and result.unreadable == 1
    assert [(r["query"], r["item_id"], r["label"]) for r in rows] == [
        ("red shoes", "it1", "L4"), (None, None, None), ("a, b", "it3", None)]
    assert rows[1]["_error"] == "invalid UTF-8 at byte 4" and rows[1]["_record"] == "bad \\xff,it2,L1,extra"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_csv_arrow_gives_up_on_after_its_first_block_keeps_what_was_read(tmp_path):
    path = tmp_path / "big.csv"  # the non-UTF-8 malformed row lies beyond the first 8 MiB block
    path.write_bytes(b"query,item_id,label\nonly two,fields\n" + b"red shoes,it1,L4\n" * 600_000
                     + b"bad \xff,it2,L1,extra\nlate,it9,L1\n")
    result, rows = staged_rows(tmp_path, path)
    unreadable = [r for r in rows if r["_error"]]
    assert result.unreadable == 2 and result.rows == len(rows) > 400_000
    assert unreadable[0]["_record"] == "only two,fields"  # met before the error: still comes out
    assert unreadable[1]["_error"].startswith(f"unreadable file after {result.rows - 1} rows: CSV parse error")
