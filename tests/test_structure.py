"The package's module graph: no import circle, and the loss module is pure tensor math (nothing that loads a model)."
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / 'safe_mm_dpo'


def imports(mod: str) -> set[str]:
    "Package modules `mod` imports anywhere in its source (top level or inside functions)."
    out = set()
    for node in ast.walk(ast.parse((PKG / f'{mod}.py').read_text(encoding='utf-8'))):
        if isinstance(node, ast.ImportFrom) and node.module and (node.level or node.module.startswith('safe_mm_dpo')):
            out.add(node.module.split('.')[-1])
    return out - {'_modidx'}


def test_no_import_circle():
    graph = {p.stem: imports(p.stem) for p in PKG.glob('*.py') if not p.stem.startswith('_')}
    state = {}
    def visit(m, path):
        if state.get(m) == 'done': return
        assert state.get(m) != 'active', f'import circle: {" → ".join(path + [m])}'
        state[m] = 'active'
        for d in graph.get(m, ()): visit(d, path + [m])
        state[m] = 'done'
    for m in graph: visit(m, [])


def test_loss_is_pure():
    assert imports('loss') <= {'core'}, imports('loss')
    src = (PKG / 'loss.py').read_text(encoding='utf-8')
    assert 'transformers' not in src and 'from_pretrained' not in src
