"`safe-mm-dpo compare` end to end on a small SafetyWorld: rows per method × setting × seed, rendered only from the file."
import json
from pathlib import Path

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
