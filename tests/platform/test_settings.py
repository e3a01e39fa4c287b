"""Settings come from the environment once, are checked, and the command line may override them."""

import pytest

from jaxnas.platform import settings


def test_defaults_and_each_variable():
    assert settings.from_environ({}) == settings.Settings()
    s = settings.from_environ({"JAXNAS_CONV_IMPL": "shift", "JAXNAS_CPU_SCHEDULER": "default",
                               "JAXNAS_CPU_MALLOC": "plain", "JAXNAS_COMPILATION_CACHE": "off",
                               "JAXNAS_NO_PROGRESS": "1"})
    assert (s.conv_impl, s.cpu_scheduler, s.cpu_malloc, s.compilation_cache, s.progress) == \
        ("shift", "default", "plain", "off", False)


@pytest.mark.parametrize("var, value, allowed", [
    ("JAXNAS_CONV_IMPL", "cudnn", "auto, xla, shift"),
    ("JAXNAS_CPU_SCHEDULER", "fast", "memory, default"),
    ("JAXNAS_CPU_MALLOC", "jemalloc", "hugepages, keep, plain"),
    ("JAXNAS_NO_PROGRESS", "yes", "0, 1"),
])
def test_a_bad_value_names_its_variable(var, value, allowed):
    with pytest.raises(ValueError, match=f"^{var}='{value}' is not one of {allowed}$"):
        settings.from_environ({var: value})


def test_read_once_then_configured(monkeypatch):
    monkeypatch.setenv("JAXNAS_CONV_IMPL", "xla")
    assert settings.reload().conv_impl == "xla"
    monkeypatch.setenv("JAXNAS_CONV_IMPL", "shift")
    assert settings.current().conv_impl == "xla"  # read once: a later change is not seen until reload()
    assert settings.configure(conv_impl="shift").conv_impl == "shift"
    assert settings.current().conv_impl == "shift"
    with pytest.raises(ValueError, match="unknown conv_impl 'fast'"):
        settings.configure(conv_impl="fast")
