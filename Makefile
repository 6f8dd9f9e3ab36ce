# The two commands of the README: `make demo` (main job) and `make test`.
# Each builds .venv from nothing when it is missing.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1

# Demo knobs (3D): make demo TEXT="make the blue ball green" OUT=outputs/demo-ball [SCENE=...] [EDITOR=...] [PRESET=tiny|full]
TEXT ?= make the red cube blue
OUT ?= outputs/demo
SCENE ?=
EDITOR ?=
PRESET ?= auto
# 2D: make edit-image IMAGE=photo.jpg TEXT="turn the ball into an orange" [MODEL=timbrooks/instruct-pix2pix]
# (the editor's own edit_settings.json gives steps, guidance and relevance settings; scripts/edit_image.py --help)
MODEL ?= toyworld/models/toy-editor
IMAGE ?= assets/toy-view.png

.PHONY: demo capture-demo edit-image gpu-check test test-fast lint train-smoke train-toy-editor evaluate-toy clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing torch (from this machine's disk) and the project into $(VENV) ..."
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	# Only the CLIP BPE vocabulary file is used (to build tokenizers offline); its
	# dependencies (timm>=1) would clash with nerfstudio's timm pin.
	$(PY) -m pip install -q --no-deps open_clip_torch==3.3.0
	@touch $(STAMP)

outputs/tiny-ip2p: | $(STAMP)
	$(PY) scripts/make_tiny_checkpoint.py --out $@

# The main job: toy scene -> nerfacto -> relevance-edit and the unmasked baseline -> report in $(OUT)/report.
demo: $(STAMP)
	$(PY) scripts/demo.py --out $(OUT) --text "$(TEXT)" --preset $(PRESET) \
		$(if $(SCENE),--scene $(SCENE)) $(if $(EDITOR),--editor $(EDITOR))

# A real capture's path on the capture-like toy world: photos -> ns-process-data (COLMAP) -> nerfacto -> relevance-edit
# and the baseline -> report and video in outputs/capture-demo (docs/capture.md). Needs colmap, ffmpeg, libusb-1.0.
capture-demo: $(STAMP)
	$(PY) scripts/capture_demo.py

edit-image: $(STAMP)
	$(PY) scripts/edit_image.py --image $(IMAGE) --text "$(TEXT)" --model $(MODEL) --out outputs/edit-image --overwrite

outputs/toy-actions: | $(STAMP)
	$(PY) scripts/make_toy_action_videos.py --out outputs/toy-videos
	$(PY) scripts/extract_action_pairs.py --videos outputs/toy-videos --annotations outputs/toy-videos/annotations.csv \
		--out $@

# A few EditAction steps on CPU: tiny model, toy action pairs (continues an earlier smoke run).
train-smoke: $(STAMP) outputs/tiny-ip2p outputs/toy-actions
	$(PY) scripts/train_editaction.py --config configs/editaction_cpu_smoke.yaml \
		$(if $(wildcard outputs/editaction-smoke/checkpoints),--resume latest)

# Retrain the embedded toy editors from scratch (about 80 min on 2 CPU cores; continues an interrupted run),
# then measure them. The shipped copies are toyworld/models/toy-editor, toy-editor-capture and toy-editor-action.
train-toy-editor: $(STAMP)
	$(PY) scripts/train_toy_editor.py --out outputs/toy-editor

evaluate-toy: $(STAMP)
	$(PY) scripts/evaluate_toy.py --json-out outputs/toy-evaluation.json

# On a machine with a CUDA GPU: SD-1.5-size editor and the 3D presets, one markdown table (bench/README.md).
gpu-check: $(STAMP)
	cd bench && ../$(PY) gpu_check.py

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean-venv:
	rm -rf $(VENV)
