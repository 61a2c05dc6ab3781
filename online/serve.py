"""``lore serve``: the shim under gunicorn with the settings of ``online/gunicorn.conf.py``.

    lore serve --set port=8080 --set workers=4 [--config configs/local.yaml]

The typed ``ServeConfig`` is resolved once here (YAML, ``--set``, ``LORE_*`` env) and every
gunicorn worker builds its app (Redis client, student, teacher) from it after the fork.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from gunicorn.app.base import BaseApplication

from online.config import ServeConfig

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")


class ShimServer(BaseApplication):
    def __init__(self, cfg: ServeConfig):
        self.serve_config = cfg
        super().__init__()

    def load_config(self) -> None:
        settings = runpy.run_path(str(GUNICORN_CONF))
        for name, value in settings.items():
            if name in self.cfg.settings and value is not None:
                self.cfg.set(name, value)
        self.cfg.set("bind", f"{self.serve_config.host}:{self.serve_config.port}")
        self.cfg.set("workers", self.serve_config.workers)
        self.cfg.set("threads", self.serve_config.threads)

    def load(self):
        from online.app import create_app

        return create_app(self.serve_config)


def main(argv: list[str] | None = None) -> int:
    cfg = ServeConfig.from_cli(argv, prog="lore serve")
    print(f"LORE shim on http://{cfg.host}:{cfg.port} ({cfg.workers} workers x {cfg.threads} threads)", file=sys.stderr)
    if cfg.teacher is not None and not cfg.teacher_url and cfg.workers > 1:
        from lore_ml.config import torch_device

        print(f"note: the in-process teacher is loaded by each worker: {cfg.workers} copies of "
              f"{cfg.teacher.model_path} on {torch_device(cfg.teacher.device)}. Beyond the small default, serve it "
              "once (`vllm serve`) and set teacher_url", file=sys.stderr)
    ShimServer(cfg).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
