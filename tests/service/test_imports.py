"""What each part may import: the math is pure, the service is slim."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_math_pulls_in_neither_fastapi_nor_redis() -> None:
    """The trainer imports this package alone; it must not drag the service's stack along."""
    code = (
        "import sys, curriculum_core;"
        "bad = [m for m in ('fastapi', 'redis', 'pydantic', 'starlette') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_trainer_client_imports_nothing_of_the_service() -> None:
    """A trainer machine installs the client and the scheduling core alone: importing
    ``trainer_client`` must load no module of the ``service`` package, nor the service's
    stack (FastAPI, Redis, pydantic, starlette), nor torch."""
    code = (
        "import sys, trainer_client, trainer_client.client;"
        "bad = sorted(m for m in sys.modules if m == 'service' or m.startswith('service.')"
        " or m.split('.')[0] in ('fastapi', 'redis', 'pydantic', 'starlette', 'torch'));"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_the_service_does_not_import_torch() -> None:
    """The service image is slim: building the app must not pull in torch or transformers."""
    code = (
        "import sys; from service.app import create_app; from service.settings import Settings;"
        "create_app(Settings(redis_url='redis://127.0.0.1:1/0', open_mode=True));"
        "print(','.join(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
