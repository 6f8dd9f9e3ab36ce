"""A real capture's path on the capture-like toy world: photos -> ns-process-data -> nerfacto -> relevance-edit and
Instruct-NeRF2NeRF -> held-out photos judged -> report and an ns-render video (``make capture-demo``).

python scripts/capture_demo.py                                      # layout 3001, into outputs/capture-demo
python scripts/capture_demo.py --camera-optimizer off --out outputs/capture-demo-fixed-poses

Checks colmap, ffmpeg and libusb-1.0 first. Interrupted? Run the same command again.
"""

from __future__ import annotations

import sys

import tyro

from editaction import EditorLoadError
from toyworld.capture_demo import CaptureDemoArgs, run_capture_demo
from toyworld.stages import DemoError


def main() -> None:
    args = tyro.cli(CaptureDemoArgs, description=__doc__)
    try:
        run_capture_demo(args)
    except (DemoError, EditorLoadError, ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        sys.exit("interrupted: run the same command again to continue")


if __name__ == "__main__":
    main()
