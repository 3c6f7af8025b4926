"Property-based tests: random rows and random bytes into the loaders give records or one clear error, never anything else."
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from safe_mm_dpo.data import RECORD_FIELDS, DataError, load_records, record_id

text = st.text(min_size=0, max_size=30)
value = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True), text, st.lists(st.integers(), max_size=2))
good_row = st.fixed_dictionaries({
    'prompt': st.text(min_size=1, max_size=40).filter(str.strip), 'response_0': st.text(min_size=1, max_size=40).filter(str.strip),
    'response_1': st.text(min_size=1, max_size=40).filter(str.strip), 'better_response_id': st.sampled_from([0, 1]),
    'safer_response_id': st.sampled_from([0, 1]), 'is_response_0_safe': st.booleans(), 'is_response_1_safe': st.booleans()})


@st.composite
def mutated_row(draw):
    row = dict(draw(good_row))
    action = draw(st.sampled_from(['keep', 'drop', 'retype', 'extra']))
    key = draw(st.sampled_from(RECORD_FIELDS))
    if action == 'drop': row.pop(key)
    elif action == 'retype': row[key] = draw(value)
    elif action == 'extra': row[draw(text)] = draw(value)
    return row


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(rows=st.lists(mutated_row(), min_size=1, max_size=6))
def test_random_rows_load_or_fail_clearly(tmp_path_factory, rows):
    p = tmp_path_factory.mktemp('fz') / 'rows.jsonl'
    p.write_text(''.join(json.dumps(r) + '\n' for r in rows))
    try:
        recs, rep = load_records(p)
    except DataError as e:
        msg = str(e)
        assert msg.startswith(f'{p}:') and len(msg.splitlines()) == 1     # names the file and line, in one line
        line = int(msg[len(str(p)) + 1:].split(':')[0])
        assert 1 <= line <= len(rows)
    else:
        assert len(recs) == len(rows) == rep.rows_read
        for r in recs:
            assert r['better_response_id'] in (0, 1) and r['safer_response_id'] in (0, 1)
            assert r['prompt'].strip() and r['response_0'].strip() and r['response_1'].strip()
            assert r['record_id'] == record_id(r)
    recs, rep = load_records(p, skip_invalid=True)                          # skip mode never raises on rows
    assert len(recs) + len(rep.skipped) == len(rows) == rep.rows_read


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes_never_crash_the_loader(tmp_path_factory, data):
    p = tmp_path_factory.mktemp('fz') / 'bytes.jsonl'
    p.write_bytes(data)
    try:
        load_records(p)
    except DataError as e:
        assert str(e).startswith(str(p))
    try:
        recs, rep = load_records(p, skip_invalid=True)
    except DataError as e:
        # only a broken JSON *array* fails as a whole: it has no rows to skip
        assert data.lstrip().startswith(b'[') and str(e).startswith(f'{p}:')
    else:
        assert len(recs) + len(rep.skipped) == rep.rows_read
