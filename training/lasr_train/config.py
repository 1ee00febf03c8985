"""Loading the recipe's YAML config (configs/default.yaml)."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from .features import FeatureConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"


def load_config(path: str | Path = DEFAULT_CONFIG, overrides: dict | None = None) -> dict:
    """Read a config file; `overrides` is a nested dict merged on top (for smoke runs and tests)."""
    with open(path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    if overrides:
        cfg = merge(cfg, overrides)
    return cfg


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def feature_config(cfg: dict) -> FeatureConfig:
    return FeatureConfig.from_dict(cfg["features"])
