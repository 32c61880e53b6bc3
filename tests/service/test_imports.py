"""What each part may import: the math is pure, the service is slim."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_math_pulls_in_neither_fastapi_nor_redis() -> None:
    """The trainer imports this package alone; it must not drag the service's stack along."""
    code = (
        "import sys, service.scheduling;"
        "bad = [m for m in ('fastapi', 'redis', 'pydantic', 'starlette') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_service_does_not_import_torch() -> None:
    """The service image is slim: building the app must not pull in torch or transformers."""
    code = (
        "import sys; from service.app import create_app; from service.settings import Settings;"
        "create_app(Settings(redis_url='redis://127.0.0.1:1/0'));"
        "print(','.join(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
