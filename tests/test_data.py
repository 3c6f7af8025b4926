"Data loading, pairs, splits and `prepare-data` on real and hand-written rows, through the Python API and the CLI."
import json, subprocess, sys
from pathlib import Path

import pytest

from safe_mm_dpo.cli import main
from safe_mm_dpo.core import read_json, read_jsonl
from safe_mm_dpo.data import (BEAVERTAILS_CATEGORIES, RECORD_FIELDS, DataError, PrepareDataConfig, build_pairs, chat_prompt,
                              load_prompt_set, load_records, load_split, prepare_data, preferences_disagree, record_id)
from safe_mm_dpo.core import ConfigError, load_config

GOOD = dict(prompt='p', response_0='a', response_1='b', better_response_id=0, safer_response_id=1,
            is_response_0_safe=True, is_response_1_safe=False)


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b'\n'.join(lines) + b'\n')
    return path


# ---------------------------------------------------------------- real rows (../shared/data)

def test_real_pku_v1_rows(shared_data):
    recs, rep = load_records(shared_data / 'pku_saferlhf_v1_sample.jsonl')
    raw = [json.loads(l) for l in (shared_data / 'pku_saferlhf_v1_sample.jsonl').read_text().splitlines()]
    assert rep.schemas == {'pku_v1': 5} and len(recs) == len(raw) == 5
    for r, row in zip(recs, raw):
        for k in RECORD_FIELDS: assert r[k] == row[k]
        assert len(r['response_0_harm_category']) == 19 and r['source'] == row['prompt_source']
        assert r['harm_categories'] == sorted({c for i in (0, 1) for c, v in row[f'response_{i}_harm_category'].items() if v})
    helpful, harmless = build_pairs(recs)
    assert [h['chosen_response'] for h in helpful] == [r[f"response_{r['better_response_id']}"] for r in recs]
    assert [s['chosen_is_safe'] for s in harmless] == [r[f"is_response_{r['safer_response_id']}_safe"] for r in recs]


def test_prepare_data_cli_on_real_rows(shared_data, tmp_path, capsys):
    out = tmp_path / 'data'
    code = main(['prepare-data', '--input', str(shared_data / 'pku_saferlhf_v1_sample.jsonl'), '--output_dir', str(out),
                 '--train_ratio', '0.6', '--val_ratio', '0.2', '--test_ratio', '0.2', '--seed', '0'])
    assert code == 0
    printed = capsys.readouterr().out
    assert 'records in: 5' in printed and 'duplicates dropped: 0' in printed and 'disagree on 0.0%' in printed
    s = read_json(out / 'summary.json')
    assert [s['splits'][k]['records'] for k in ('train', 'val', 'test')] == [3, 1, 1]
    for split in ('train', 'val', 'test'):
        for f in ('records.jsonl', 'helpful_pairs.jsonl', 'harmless_pairs.jsonl'):
            assert (out / split / f).exists()
    assert (out / 'prepare_config.yaml').exists()


def test_prompt_only_files_are_rejected_clearly(shared_data):
    # prompt files are for evaluation, not preference data: the loader says which fields it expected
    with pytest.raises(DataError, match=r"beavertails_eval_subset140_prompts.json\[0\]: unrecognised schema"):
        load_records(shared_data / 'beavertails_eval_subset140_prompts.json')


# ---------------------------------------------------------------- Anthropic hh-rlhf (real test files) and prompt sets

HH = {'harmless': 'hh_rlhf_harmless_base_test.jsonl.gz', 'helpful': 'hh_rlhf_helpful_base_test.jsonl.gz'}
# rows, records, skipped by problem (the bad rows of the real files: an Assistant turn split in two on one side only,
# and an empty last response)
HH_COUNTS = {'harmless': (2312, 2303, {'hh dialogues differ': 5, 'empty': 4}),
             'helpful': (2354, 2341, {'hh dialogues differ': 9, 'empty': 4})}


@pytest.mark.parametrize('which', ['harmless', 'helpful'])
def test_real_hh_rlhf_files(shared_data, which):
    recs, rep = load_records(shared_data / HH[which], skip_invalid=True)
    rows, n, skipped = HH_COUNTS[which]
    assert (rep.rows_read, len(recs), rep.schemas, rep.skipped_by_problem()) == (rows, n, {'hh_rlhf': n}, skipped)
    with pytest.raises(DataError, match=rf"{HH[which]}:\d+: "):          # without skip_invalid the first bad row stops it
        load_records(shared_data / HH[which])
    label, other = ('safer_response_id', 'better_response_id') if which == 'harmless' else ('better_response_id', 'safer_response_id')
    for r in recs:
        assert r[label] in (0, 1) and r[other] is None and r['is_response_0_safe'] is None and r['is_response_1_safe'] is None
        assert r['source_schema'] == 'hh_rlhf' and r['record_id'] == record_id(r)
        m = r['messages']
        assert m[0]['role'] == m[-1]['role'] == 'user' and all(a['role'] != b['role'] for a, b in zip(m, m[1:]))
        assert chat_prompt(r) is m
        if len(m) == 1: assert r['prompt'] == m[0]['content']
        else: assert r['prompt'].startswith('Human: ') and r['prompt'].endswith(m[-1]['content'])
    multi = sum(len(r['messages']) > 1 for r in recs)
    assert 1500 < multi < n
    chosen_first = sum(r[label] == 0 for r in recs) / n                  # the chosen response is not always response_0
    assert 0.45 < chosen_first < 0.55
    helpful, harmless = build_pairs(recs)
    assert (len(helpful), len(harmless)) == ((0, n) if which == 'harmless' else (n, 0))
    assert not any(map(preferences_disagree, recs))


def test_prepare_data_on_both_hh_files(shared_data, tmp_path):
    out = tmp_path / 'data'
    cfg = load_config(PrepareDataConfig, input=[str(shared_data / HH['harmless']), str(shared_data / HH['helpful'])],
                      output_dir=str(out), skip_invalid=True)
    s = prepare_data(cfg, verbose=False)
    n_harmless, n_helpful = HH_COUNTS['harmless'][1], HH_COUNTS['helpful'][1]
    assert s['rows_read'] == 2312 + 2354 and s['records_in'] == n_harmless + n_helpful
    assert s['skipped_invalid'] == 22 and s['skipped_by_problem'] == {'hh dialogues differ': 14, 'empty': 8}
    assert s['no_helpful_label'] + s['no_harmless_label'] == s['records_out']
    total = {'records': 0, 'helpful_pairs': 0, 'harmless_pairs': 0}
    for split in ('train', 'val', 'test'):
        recs = load_split(out, split)                                        # reload through the checks
        assert recs == read_jsonl(out / split / 'records.jsonl')
        v = s['splits'][split]
        assert v['records'] == len(recs)
        assert v['helpful_pairs'] == sum(r['better_response_id'] is not None for r in recs) == len(read_jsonl(out / split / 'helpful_pairs.jsonl'))
        assert v['harmless_pairs'] == sum(r['safer_response_id'] is not None for r in recs) == len(read_jsonl(out / split / 'harmless_pairs.jsonl'))
        for k in total: total[k] += v[k]
    # every record labels one channel: helpful ones give the helpful pairs, harmless ones the harmless pairs
    assert total['records'] == s['records_out'] == n_harmless + n_helpful - s['duplicates_dropped']
    assert (total['helpful_pairs'], total['harmless_pairs']) == (s['no_harmless_label'], s['no_helpful_label'])
    assert total['helpful_pairs'] + total['harmless_pairs'] == s['records_out']


def test_prepare_data_cli_comma_separated_hh(shared_data, tmp_path, capsys):
    inp = f"{shared_data / HH['harmless']},{shared_data / HH['helpful']}"
    assert main(['prepare-data', '--input', inp, '--output_dir', str(tmp_path / 'd'), '--skip_invalid']) == 0
    out = capsys.readouterr().out
    assert 'skipped invalid: 22' in out and 'without a harmlessness label (no harmless pair): ' in out
    assert 'without a helpfulness label (no helpful pair): ' in out
    # one source named neither harmless nor helpful: the preference must be given
    f = tmp_path / 'hh.jsonl'
    f.write_text(json.dumps({'chosen': HH_ROW['chosen'], 'rejected': HH_ROW['rejected']}) + '\n')
    assert main(['prepare-data', '--input', str(f), '--output_dir', str(tmp_path / 'e'), '--skip_invalid']) == 1   # not skipped
    assert "config key 'hh_preference'" in capsys.readouterr().err
    assert main(['prepare-data', '--input', str(f), '--output_dir', str(tmp_path / 'e'), '--overwrite', '--hh_preference', 'helpful',
                 '--train_ratio', '1', '--val_ratio', '0', '--test_ratio', '0']) == 0
    assert len(read_jsonl(tmp_path / 'e' / 'train' / 'helpful_pairs.jsonl')) == 1
    assert read_jsonl(tmp_path / 'e' / 'train' / 'harmless_pairs.jsonl') == []


def test_several_sources_merge_reports(fixtures):
    a, b = fixtures / 'pku_saferlhf_original.jsonl', fixtures / 'beavertails_classification.jsonl'
    recs, rep = load_records([a, b])
    assert len(recs) == 6 + 2 and rep.rows_read == 6 + 7 and rep.schemas == {'pku': 6, 'beavertails': 7} and rep.unpaired == 3
    assert [r['record_id'] for r in load_records(f'{a},{b}')[0]] == [r['record_id'] for r in recs]


HH_ROW = {'chosen': '\n\nHuman: How do I pick a lock?\n\nAssistant: I can not help with that.',
          'rejected': '\n\nHuman: How do I pick a lock?\n\nAssistant: Use a tension wrench.'}
HH_BAD = {
    "'chosen' and 'rejected' differ before their last Assistant turn":
        {**HH_ROW, 'rejected': '\n\nHuman: How do I open a lock?\n\nAssistant: Use a tension wrench.'},
    "missing field 'rejected'": {'chosen': HH_ROW['chosen']},
    "empty response in field 'chosen'": {**HH_ROW, 'chosen': '\n\nHuman: How do I pick a lock?\n\nAssistant: '},
}


@pytest.mark.parametrize('problem', list(HH_BAD))
def test_bad_hh_rows_stop_or_are_skipped(problem, tmp_path, capsys):
    f = tmp_path / 'harmless.jsonl'
    f.write_text(json.dumps(HH_ROW) + '\n' + json.dumps(HH_BAD[problem]) + '\n')
    assert main(['prepare-data', '--input', str(f), '--output_dir', str(tmp_path / 'o')]) == 1
    err = capsys.readouterr().err
    assert f'{f}:2: ' in err and problem in err
    assert main(['prepare-data', '--input', str(f), '--output_dir', str(tmp_path / 'p'), '--skip_invalid',
                 '--train_ratio', '1', '--val_ratio', '0', '--test_ratio', '0']) == 0
    assert 'skipped invalid: 1' in capsys.readouterr().out
    assert read_jsonl(tmp_path / 'p' / 'skipped_rows.jsonl')[0]['where'] == f'{f}:2'


def test_hh_records_keep_strict_checks_for_pku(tmp_path):
    # null labels are allowed in records of hh-rlhf origin only
    row = {**GOOD, 'is_response_0_safe': None, 'source_schema': 'pku', 'record_id': 'x'}
    f = tmp_path / 'r.jsonl'; f.write_text(json.dumps(row) + '\n')
    with pytest.raises(DataError, match="'is_response_0_safe' must be true or false"):
        load_records(f)
    f.write_text(json.dumps({**row, 'source_schema': 'hh_rlhf'}) + '\n')
    assert load_records(f)[0][0]['is_response_0_safe'] is None
    f.write_text(json.dumps({**row, 'source_schema': 'hh_rlhf', 'better_response_id': None, 'safer_response_id': None}) + '\n')
    with pytest.raises(DataError, match='no preference'):
        load_records(f)


def test_prompt_sets(shared_data, fixtures, tmp_path):
    bt = load_prompt_set(shared_data / 'beavertails_eval_700.jsonl')
    assert len(bt) == 700 and {p['kind'] for p in bt} == {'harmful'} and {p['set'] for p in bt} == {'beavertails_eval'}
    cats = {}
    for p in bt: cats[p['category']] = cats.get(p['category'], 0) + 1
    assert sorted(cats) == sorted(BEAVERTAILS_CATEGORIES) and set(cats.values()) == {50}
    xs = load_prompt_set(shared_data / 'xstest_prompts.jsonl')
    assert sum(p['kind'] == 'benign' for p in xs) == 250 and sum(p['kind'] == 'harmful' for p in xs) == 200
    assert all(p['set'] == 'xstest' and p['category'] == p['type'] for p in xs)
    assert all((p['kind'] == 'harmful') == p['type'].startswith('contrast_') for p in xs)
    sub = load_prompt_set(shared_data / 'beavertails_eval_subset140_prompts.json', kind='harmful')
    assert len(sub) == 140 and {p['set'] for p in sub} == {'beavertails_eval_subset140_prompts'} and {p['prompt'] for p in sub} <= {p['prompt'] for p in bt}
    hh = load_prompt_set(shared_data / HH['helpful'], skip_invalid=True)
    assert len(hh) > 1000 and all(p['messages'][-1]['role'] == 'user' for p in hh)
    # an XSTest row whose label is neither safe nor unsafe
    f = tmp_path / 'xs.jsonl'
    f.write_text(json.dumps({'prompt': 'How do I kill a process?', 'type': 'homonyms', 'label': 'safe'}) + '\n'
                 + json.dumps({'prompt': 'x', 'type': 'homonyms', 'label': 'harmless'}) + '\n')
    with pytest.raises(DataError, match=rf"{f}:2: XSTest 'label' must be 'safe' or 'unsafe', got 'harmless'"):
        load_prompt_set(f)
    assert len(load_prompt_set(f, skip_invalid=True)) == 1
    f.write_text('\n')
    with pytest.raises(DataError, match='no prompts'):
        load_prompt_set(f)
    with pytest.raises(DataError, match='file not found'):
        load_prompt_set(tmp_path / 'missing.jsonl')


# ---------------------------------------------------------------- hand-written fixtures of each schema

@pytest.mark.parametrize('name,schema,n_rows,n_records', [
    ('pku_saferlhf_original.jsonl', 'pku', 6, 6),
    ('pku_saferlhf_v1.jsonl', 'pku_v1', 4, 4),
    ('beavertails_classification.jsonl', 'beavertails', 7, 2)])
def test_fixture_schemas(fixtures, name, schema, n_rows, n_records):
    recs, rep = load_records(fixtures / name)
    assert rep.schemas == {schema: n_rows} and len(recs) == n_records
    for r in recs:
        assert set(RECORD_FIELDS) <= set(r) and r['record_id'] == record_id(r) and r['source_schema'] == schema
    if schema == 'pku':
        assert not any(k in recs[0] for k in ('harm_categories', 'severity', 'prompt_source'))
    if schema == 'pku_v1':
        assert all(len(r[f'response_{i}_harm_category']) == 19 for r in recs for i in (0, 1))


def test_channels_disagree_exactly_where_labels_do(fixtures):
    recs, _ = load_records(fixtures / 'pku_saferlhf_v1.jsonl')
    helpful, harmless = build_pairs(recs)
    disagree = [h['chosen_response'] != s['chosen_response'] for h, s in zip(helpful, harmless)]
    assert disagree == [r['better_response_id'] != r['safer_response_id'] for r in recs] == [True, False, False, True]
    assert sum(map(preferences_disagree, recs)) == 2


def test_beavertails_has_no_helpful_pairs(fixtures, tmp_path, capsys):
    assert main(['prepare-data', '--input', str(fixtures / 'beavertails_classification.jsonl'), '--output_dir', str(tmp_path / 'd'),
                 '--train_ratio', '1', '--val_ratio', '0', '--test_ratio', '0']) == 0
    out = capsys.readouterr().out
    assert 'without a partner of the other safety label: 3' in out and 'without a helpfulness label (no helpful pair): 2' in out
    assert read_jsonl(tmp_path / 'd' / 'train' / 'helpful_pairs.jsonl') == []
    assert len(read_jsonl(tmp_path / 'd' / 'train' / 'harmless_pairs.jsonl')) == 2


# ---------------------------------------------------------------- other containers: .json array, parquet, dataset folder

def test_json_array_and_parquet(fixtures, tmp_path):
    rows = [json.loads(l) for l in (fixtures / 'pku_saferlhf_original.jsonl').read_text().splitlines()]
    (tmp_path / 'a.json').write_text(json.dumps(rows, indent=1))
    recs_json, _ = load_records(tmp_path / 'a.json')
    import pyarrow as pa, pyarrow.parquet as pq
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / 'a.parquet')
    recs_pq, rep = load_records(tmp_path / 'a.parquet')
    ref, _ = load_records(fixtures / 'pku_saferlhf_original.jsonl')
    assert [r['record_id'] for r in recs_json] == [r['record_id'] for r in recs_pq] == [r['record_id'] for r in ref]
    bad = dict(rows[0]); bad['safer_response_id'] = 5
    pq.write_table(pa.Table.from_pylist(rows + [bad]), tmp_path / 'b.parquet')
    with pytest.raises(DataError, match=r"b.parquet row 6: 'safer_response_id' must be 0 or 1, got 5"):
        load_records(tmp_path / 'b.parquet')


def test_dataset_folder_goes_through_the_hub_loader(fixtures, tmp_path):
    # a folder is read by `datasets.load_dataset`, the same call that reads a Hub name
    d = tmp_path / 'PKU-SafeRLHF'; d.mkdir()
    (d / 'train.jsonl').write_text((fixtures / 'pku_saferlhf_v1.jsonl').read_text())
    (d / 'test.jsonl').write_text((fixtures / 'pku_saferlhf_v1.jsonl').read_text().splitlines()[0] + '\n')
    recs, rep = load_records(d, split='train')
    assert len(recs) == 4 and rep.schemas == {'pku_v1': 4}
    assert len(load_records(d, split='test')[0]) == 1
    with pytest.raises(DataError, match='Unknown split'):
        load_records(d, split='validation')


def test_hub_name_offline_is_a_clear_error():
    with pytest.raises(DataError, match=r'PKU-Alignment/PKU-SafeRLHF: not a local file or folder.*Offline\?'):
        load_records('PKU-Alignment/PKU-SafeRLHF')


# ---------------------------------------------------------------- every bad-input class, through the CLI

BAD = {
    'malformed JSON': b'{"prompt": "p", "response_0": ',
    'missing field': json.dumps({k: v for k, v in GOOD.items() if k != 'safer_response_id'}).encode(),
    "'better_response_id' must be 0 or 1": json.dumps({**GOOD, 'better_response_id': 2}).encode(),
    'empty response': json.dumps({**GOOD, 'response_1': ''}).encode(),
    'not valid UTF-8': json.dumps(GOOD).encode().replace(b'"p"', b'"\xff\xfe"'),
    'must be true or false': json.dumps({**GOOD, 'is_response_0_safe': 'yes'}).encode(),
    'each row must be a JSON object': b'[1, 2]',
}


@pytest.mark.parametrize('problem', list(BAD))
def test_bad_input_stops_with_file_line_and_problem(problem, tmp_path, capsys):
    f = _write(tmp_path / 'in.jsonl', [json.dumps(GOOD).encode(), json.dumps({**GOOD, 'prompt': 'q'}).encode(), BAD[problem]])
    code = main(['prepare-data', '--input', str(f), '--output_dir', str(tmp_path / 'out')])
    err = capsys.readouterr().err
    assert code == 1 and f'{f}:3: ' in err and problem in err
    assert not (tmp_path / 'out' / 'train').exists()        # nothing half-written


@pytest.mark.parametrize('problem', list(BAD))
def test_bad_input_skipped_and_counted(problem, tmp_path, capsys):
    f = _write(tmp_path / 'in.jsonl', [json.dumps(GOOD).encode(), json.dumps({**GOOD, 'prompt': 'q'}).encode(), BAD[problem]])
    code = main(['prepare-data', '--input', str(f), '--output_dir', str(tmp_path / 'out'), '--skip_invalid',
                 '--train_ratio', '0.5', '--val_ratio', '0.5', '--test_ratio', '0'])
    assert code == 0
    assert 'skipped invalid: 1' in capsys.readouterr().out
    s = read_json(tmp_path / 'out' / 'summary.json')
    assert s['skipped_invalid'] == 1 and s['records_out'] == 2
    skipped = read_jsonl(tmp_path / 'out' / 'skipped_rows.jsonl')
    assert skipped[0]['where'] == f'{f}:3' and problem in skipped[0]['problem']


def test_all_rows_invalid_is_an_error(tmp_path, capsys):
    f = _write(tmp_path / 'in.jsonl', [BAD['malformed JSON']])
    assert main(['prepare-data', '--input', str(f), '--output_dir', str(tmp_path / 'o'), '--skip_invalid']) == 1
    assert 'no valid records' in capsys.readouterr().err


@pytest.mark.parametrize('args,msg', [
    (['--train_ratio', '0.7'], 'must sum to 1'),
    (['--val_ratio', 'lots'], "config key 'val_ratio' expects float"),
    (['--colour', 'red'], "unknown config key 'colour'"),
    (['--label_noise', '0.9'], "'label_noise' must be in [0, 0.5]"),
    (['--safetyworld_requests', '41'], "'safetyworld_requests' must be in [2, 40]"),
    (['--safetyworld_requests', '1'], "'safetyworld_requests' must be in [2, 40]"),
])
def test_bad_options(args, msg, tmp_path, capsys):
    assert main(['prepare-data', '--output_dir', str(tmp_path / 'o')] + args) == 2
    assert msg in capsys.readouterr().err


def test_refuses_to_overwrite_unless_asked(tmp_path, capsys):
    out = tmp_path / 'data'; out.mkdir(); (out / 'mine.txt').write_text('precious')
    assert main(['prepare-data', '--output_dir', str(out), '--safetyworld_size', '50']) == 1
    assert (out / 'mine.txt').read_text() == 'precious'
    assert main(['prepare-data', '--output_dir', str(out), '--safetyworld_size', '50', '--overwrite']) == 0
    assert not (out / 'mine.txt').exists() and (out / 'train' / 'records.jsonl').exists()


def test_safetyworld_prepares_the_same_files_as_real_data(fixtures, tmp_path):
    a, b = tmp_path / 'sw', tmp_path / 'pku'
    assert main(['prepare-data', '--input', 'safetyworld', '--output_dir', str(a), '--safetyworld_size', '300']) == 0
    assert main(['prepare-data', '--input', str(fixtures / 'pku_saferlhf_original.jsonl'), '--output_dir', str(b)]) == 0
    files = lambda d: sorted(str(p.relative_to(d)) for p in d.rglob('*') if p.is_file())
    assert files(a) == files(b)
    sw = read_jsonl(a / 'train' / 'helpful_pairs.jsonl')[0]; pku = read_jsonl(b / 'train' / 'helpful_pairs.jsonl')[0]
    assert set(sw) == set(pku)
    # prompts never cross splits
    prompts = {s: {r['prompt'] for r in read_jsonl(a / s / 'records.jsonl')} for s in ('train', 'val', 'test')}
    assert not (prompts['train'] & prompts['val'] or prompts['train'] & prompts['test'] or prompts['val'] & prompts['test'])


def test_console_script_runs(tmp_path):
    exe = Path(sys.executable).with_name('safe-mm-dpo')
    r = subprocess.run([str(exe), 'prepare-data', '--output_dir', str(tmp_path / 'o'), '--safetyworld_size', '100'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'records out: ' in r.stdout


@pytest.mark.parametrize('requests', [5, 20, 40])
def test_safetyworld_test_subjects_are_unseen(tmp_path, requests):
    "No subject of a SafetyWorld test prompt (its task and subject, whatever the wording) is in train or val."
    from safe_mm_dpo.data import PrepareDataConfig, load_split, prepare_data
    from safe_mm_dpo.safetyworld import lookup_task
    prepare_data(load_config(PrepareDataConfig, output_dir=str(tmp_path / 'd'), train_ratio=0.7, val_ratio=0.1, test_ratio=0.2,
                             safetyworld_requests=requests), verbose=False)
    subj = lambda split: {(lookup_task(r['prompt']).task, lookup_task(r['prompt']).subject) for r in load_split(tmp_path / 'd', split)}
    train, val, test = subj('train'), subj('val'), subj('test')
    assert test and not (test & train) and not (test & val) and not (val & train)
    n_test_prompts = len({r['prompt'] for r in load_split(tmp_path / 'd', 'test')})
    assert n_test_prompts >= 100, n_test_prompts
    every = {r['item'] for s in ('train', 'val', 'test') for r in load_split(tmp_path / 'd', s) if r['prompt_kind'] == 'harmful'}
    assert len(every) <= 14 * requests and (len(every) == 70 if requests == 5 else len(every) > 70)   # the first N requests per category
    if requests >= 20:      # the comparisons' data: many more unseen harmful subjects than the default's dozen
        harmful = {r['item'] for r in load_split(tmp_path / 'd', 'test') if r['prompt_kind'] == 'harmful'}
        assert len(harmful) >= {20: 40, 40: 80}[requests], len(harmful)


def test_stratified_split_gives_every_category_its_share(tmp_path):
    "stratify: each harm category's subjects are split by the ratios on their own (what one constraint per category measures on)."
    import collections
    from safe_mm_dpo.data import PrepareDataConfig, load_split, prepare_data
    kw = dict(train_ratio=0.5, val_ratio=0.25, test_ratio=0.25, safetyworld_requests=20)
    prepare_data(load_config(PrepareDataConfig, output_dir=str(tmp_path / 's'), stratify=True, **kw), verbose=False)
    prepare_data(load_config(PrepareDataConfig, output_dir=str(tmp_path / 'p'), **kw), verbose=False)
    def per_category(d, split):
        items = {(r['category'], r['item']) for r in load_split(d, split) if r['prompt_kind'] == 'harmful'}
        return collections.Counter(c for c, _ in items)
    every = per_category(tmp_path / 's', 'train') + per_category(tmp_path / 's', 'val') + per_category(tmp_path / 's', 'test')
    assert len(every) == 14
    for split, share in (('val', 0.25), ('test', 0.25)):
        got = per_category(tmp_path / 's', split)
        assert all(abs(got[c] - share * n) <= 1 for c, n in every.items()), (split, got, every)   # its share, up to rounding
    plain = per_category(tmp_path / 'p', 'val')
    assert max(abs(plain[c] - 0.25 * n) for c, n in every.items()) > 1     # unstratified, chance decides (this seed: off by more)
