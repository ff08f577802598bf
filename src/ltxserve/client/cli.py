"""``ltx``: the LTX Video API from the shell (hosted service or an ltxserve server).

    ltx text-to-video --prompt "a red fox in the snow" --model ltx-2-3-fast \\
        --duration 2 --resolution 1280x720 -o fox.mp4
    ltx image-to-video --image-uri photo.png --prompt "slow push in" ...  # uploads photo.png
    ltx status text-to-video 3f2c...
    ltx upload clip.mp4
    ltx jobs list --status processing --all          # the key's jobs (ltxserve servers)

One subcommand per endpoint: it submits the job, waits, and downloads the result.
``--no-wait`` stops after the submit and prints the id. Any ``*-uri`` option also
takes a local file, which is uploaded first through /v1/upload.

Environment: every option can also be set as ``LTX_<OPTION>``, the long name in
upper case with dashes as underscores (``--prompt`` -> ``LTX_PROMPT``,
``--image-uri`` -> ``LTX_IMAGE_URI``, ``--json`` -> ``LTX_JSON=1``). The one
exception is the key, ``LTXV_API_KEY``, the name the hosted service documents.
Command-line values win over the environment.

stdout carries only the result; progress goes to stderr. Exit codes are tabled in
``ltxserve.client._cli_ui`` and docs/sdk.md. This module stays a thin entry point,
so ``python -m ltxserve.client.cli`` and the ``ltx`` script load one single app.
"""

from __future__ import annotations

from ltxserve.client import (
    _cli_endpoints,  # noqa: F401  (registers the endpoint commands)
    _cli_jobs,  # noqa: F401  (registers `ltx jobs`)
)
from ltxserve.client._cli_app import app


def main() -> None:
    """Console-script entry point (``ltx``)."""
    app(prog_name="ltx")


__all__ = ["app", "main"]

if __name__ == "__main__":
    main()
