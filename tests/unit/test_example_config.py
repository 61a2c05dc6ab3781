import yaml

from lore_ml.config import PROJECT_ROOT, LoreConfig

EXAMPLE = PROJECT_ROOT / "configs" / "local.yaml"


def test_example_config_spells_out_the_defaults():
    cfg, defaults = LoreConfig.load(EXAMPLE), LoreConfig.load()
    assert cfg.spark == defaults.spark and cfg.lakehouse == defaults.lakehouse and cfg.redis == defaults.redis


def test_example_config_documents_every_shared_field():
    spelled = yaml.safe_load(EXAMPLE.read_text())
    defaults = LoreConfig.load()
    for section in ("spark", "lakehouse", "data", "redis"):
        fields = set(type(getattr(defaults, section)).model_fields) - {"password"}  # secrets: env only
        assert set(spelled[section]) == fields, section
