"`safe-mm-dpo compare` end to end on a small SafetyWorld: rows per method × setting × seed, rendered only from the file."
import json
from pathlib import Path

import pytest

from safe_mm_dpo.cli import main

SMALL = ['--data.safetyworld_size', '400', '--tiny_layers', '2', '--tiny_hidden_size', '64', '--tiny_intermediate_size', '128',
         '--sft.epochs', '1', '--sft.eval_max_new_tokens', '8', '--judges.epochs', '1', '--align.epochs', '1',
         '--eval.max_new_tokens', '8', '--progress', 'false']


def test_compare_writes_one_row_per_run_and_renders_from_the_file(tmp_path, capsys):
    out = tmp_path / 'c'
    args = ['compare', '--output_dir', str(out), '--seeds', '[0, 1]',
            '--variants', "[dpo:dpo_helpful, 'bfpo:bfpo:method_args={alpha: 0.5}']"] + SMALL
    assert main(args) == 0
    rows = [json.loads(l) for l in (out / 'results.jsonl').read_text().splitlines()]
    assert sorted((r['method'], r['setting'], r['seed']) for r in rows) == [('bfpo', 'bfpo', 0), ('bfpo', 'bfpo', 1),
                                                                            ('dpo_helpful', 'dpo', 0), ('dpo_helpful', 'dpo', 1)]
    for r in rows:
        assert r['commit'] and len(r['safety_rate_outcomes']) > 0
        assert r['safety_rate'] == sum(r['safety_rate_outcomes']) / len(r['safety_rate_outcomes'])
    # the two seeds are two trainings: their weights differ
    from safetensors.torch import load_file
    w0, w1 = (load_file(str(out / 'models' / 'compare' / f'dpo@s{s}' / 'model.safetensors')) for s in (0, 1))
    assert any(not (w0[k] == w1[k]).all() for k in w0)
    table = (out / 'table.md').read_text()
    assert '| dpo_helpful | dpo | 2 |' in table and '| bfpo | bfpo | 2 |' in table and (out / 'frontier.png').exists()
    # rendering reads only the file: a changed row changes the table, and nothing is trained again
    for r in rows[:2]: r['safety_rate_outcomes'] = [1 - x for x in r['safety_rate_outcomes']]      # every prompt's outcome flipped
    (out / 'results.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    capsys.readouterr()
    assert main(['compare', '--output_dir', str(out), '--render_only', '--variants', '[dpo:dpo_helpful]']) == 0
    new = (out / 'table.md').read_text()
    assert new != table and 'ran' not in capsys.readouterr().out
    # --collect_only rebuilds the rows from the finished runs (the flipped outcomes come back), training nothing
    assert main(['compare', '--output_dir', str(out), '--collect_only', '--seeds', '[0, 1]',
                 '--variants', "[dpo:dpo_helpful, 'bfpo:bfpo:method_args={alpha: 0.5}']"] + SMALL) == 0
    again = [json.loads(l) for l in (out / 'results.jsonl').read_text().splitlines()]
    assert again[0]['safety_rate_outcomes'] == [1 - x for x in rows[0]['safety_rate_outcomes']]    # the runs' own outcomes again
    assert (out / 'table.md').read_text() == table and 'ran' not in capsys.readouterr().out
    assert main(['compare', '--output_dir', str(out), '--collect_only', '--variants', '[dpo:dpo_helpful]', '--seeds', '[7]']) == 1
    assert 'runs not finished' in capsys.readouterr().err


def test_compare_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / 'c'
    # the align block holds what only the variants complete (the log-odds error needs their target rate): the skipped
    # `aligned` policy of the pipeline is not built from it alone, so this is no error
    cfg = tmp_path / 'compare.yaml'
    cfg.write_text("align: {lambda_rule: pid, lambda_args: {kp: 0.25, error: log_odds}, jc_prompts: 8}\n"
                   "variants: ['t10:safe_mm_dpo:target_unsafe_rate=0.1;threshold_relative=null', "
                   "'t30:safe_mm_dpo:target_unsafe_rate=0.3;threshold_relative=null']\n")
    assert main(['compare', '--config', str(cfg), '--output_dir', str(out), '--dry_run', '--seeds', '[0, 1]'] + SMALL) == 0
    printed = capsys.readouterr().out
    assert 'compare/t10@s1' in printed and 'compare/t30@s0' in printed and 'memory estimate' in printed
    assert 'aligned ' not in printed       # the pipeline's own policy is not part of a comparison's plan
    assert not out.exists()                # no config, no results file, no stage


def test_results_block_is_rendered_from_the_file_into_docs(tmp_path):
    "The docs' results block is replaced (markdown file or notebook cell) by what the results file renders, and only that."
    from safe_mm_dpo.compare import BLOCK, METRICS, results_block, update_block
    rows = [{'method': 'dpo_helpful', 'setting': 'dpo', 'seed': s, 'commit': 'abc', 'run_seconds': 60, 'shared_seconds': 30,
             **{f'{k}_outcomes': [1, 0, 1, 1] for k in METRICS}} for s in (0, 1, 2)]
    res = tmp_path / 'results.jsonl'
    res.write_text(''.join(json.dumps(r) + '\n' for r in rows))
    md = tmp_path / 'doc.md'
    md.write_text(f'intro\n{BLOCK[0]}\nold table\n{BLOCK[1]}\noutro\n')
    block = results_block(res, 'frontier.png', 'safe-mm-dpo compare ...')
    update_block(md, block)
    text = md.read_text()
    assert text.startswith('intro\n') and text.endswith('\noutro\n') and 'old table' not in text
    assert '| dpo_helpful | dpo | 3 | 75.0% [' in text and 'seeds [0, 1, 2]' in text and 'took 4 minutes' in text
    assert '4 harmful and 4 benign test prompts' in text and 'constraint_curves.png' not in text   # no target-rate run
    assert 'seed not recorded' in text                  # neither the rows nor a config beside them say the data seed
    (tmp_path / 'compare_config.yaml').write_text('seed: 1\n')
    assert 'one pair of judges, seed 1 (' in results_block(res, 'frontier.png', 'x')      # rows written before they carried it
    res.write_text(''.join(json.dumps({**r, 'data_seed': 2}) + '\n' for r in rows))
    assert 'one pair of judges, seed 2 (' in results_block(res, 'frontier.png', 'x')      # the rows' own record wins
    nb = tmp_path / 'doc.ipynb'
    nb.write_text(json.dumps({'cells': [{'cell_type': 'markdown', 'metadata': {}, 'source': [f'{BLOCK[0]}\n', 'x\n', BLOCK[1]]}],
                              'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))
    update_block(nb, block)
    assert ''.join(json.loads(nb.read_text())['cells'][0]['source']) == block


def test_readme_results_block_matches_the_committed_results(monkeypatch):
    "When the README carries a comparison block, it is exactly what the committed results file renders (no hand-typed number)."
    import pytest
    from safe_mm_dpo.compare import BLOCK
    root = Path(__file__).resolve().parents[1]
    readme = (root / 'README.md').read_text()
    if BLOCK[0] not in readme: pytest.skip('the README has no comparison block yet (no committed results file)')
    from safe_mm_dpo.compare import results_block
    import re
    a, b = readme.index(BLOCK[0]), readme.index(BLOCK[1]) + len(BLOCK[1])
    shown = readme[a:b]
    src = re.search(r'Rendered from `([^`]+)`', shown).group(1)
    cmd = re.search(r'\) by `([^`]+)`', shown).group(1)
    img = re.search(r'!\[frontier with intervals\]\(([^)]+)\)', shown).group(1)        # as .ci/readme rewrote it for the root
    monkeypatch.chdir(root)                                                   # the block names the file as the command saw it
    want = results_block(src, img.removeprefix('nbs/'), cmd).replace('](results/', '](nbs/results/')
    assert shown == want, 'README and the results file disagree: rerun the render command named in the block'


def test_readme_real_path_tables_are_the_committed_reports():
    "Each real-path report the README shows (nbs/results/<run>/report.md): its metrics table appears in the README verbatim."
    import pytest
    root = Path(__file__).resolve().parents[1]
    readme = (root / 'README.md').read_text()
    shown = [run for run in ('smollm2-hh', 'peers-smollm2-hh') if f'nbs/results/{run}/report.md' in readme]
    if not shown: pytest.skip('the README shows no real-path report')
    for run in shown:
        lines = (root / 'nbs' / 'results' / run / 'report.md').read_text().splitlines()
        start = next((i for i, l in enumerate(lines) if l.startswith('| model |')), None)
        assert start is not None, f'nbs/results/{run}/report.md has no metrics table'
        end = next((j for j in range(start, len(lines)) if not lines[j].startswith('|')), len(lines))
        table = '\n'.join(lines[start:end])
        assert table in readme, f'the README table of {run} is not the one nbs/results/{run}/report.md holds'


@pytest.mark.parametrize('name', sorted(p.name for p in (Path(__file__).parents[1] / 'configs').glob('*.yaml')
                                        if 'variants:' in p.read_text()))
def test_every_compare_config_builds_every_run(name, tmp_path, capsys):
    "Each committed comparison config builds and validates every run's stage config (the dry run), writing nothing."
    cfg = Path(__file__).parents[1] / 'configs' / name
    assert main(['compare', '--config', str(cfg), '--output_dir', str(tmp_path / 'c'), '--dry_run']) == 0, capsys.readouterr().err
    assert 'compare/' in capsys.readouterr().out and not (tmp_path / 'c').exists()
