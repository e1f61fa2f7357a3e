"""The package's own tests: the plugin is found through its entry point and honours the model interface."""

import ecgzoo
from ecgzoo.testing import check_model_plugin


def test_the_entry_point_makes_the_model_visible():
    assert "examplenet" in ecgzoo.list_models()
    assert "entry point example = ecgzoo_example_plugin" in ecgzoo.plugin_info("examplenet")["source"]


def test_the_model_honours_the_interface():
    check_model_plugin("examplenet", width=4)           # shapes, determinism, exact CAM, config round trip
    check_model_plugin("examplenet", in_leads=12, num_classes=5)
