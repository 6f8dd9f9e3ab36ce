"""An editor checkpoint's recommended settings: read from its folder, defaults everywhere, explicit options win."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
import tyro
from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion

from editaction import Editor, EditorLoadError
from editaction.config import EditConfig, RelevanceConfig
from editaction.settings import (
    SETTINGS_FILE,
    EditOptions,
    EditorSettings,
    RelevanceOptions,
    SettingsError,
    load_settings,
)
from toyworld import TOY_ACTION_EDITOR, TOY_EDITOR, TOY_SETTINGS


@pytest.fixture
def plain_checkpoint(tiny_checkpoint, tmp_path):
    """The tiny checkpoint without a settings file."""
    path = shutil.copytree(tiny_checkpoint, tmp_path / "plain")
    (path / SETTINGS_FILE).unlink()
    return path


def test_a_checkpoint_without_the_file_gets_the_published_defaults(plain_checkpoint):
    settings = load_settings(plain_checkpoint)
    assert settings == EditorSettings()
    assert (settings.image.edit.steps, settings.image.edit.text_guidance, settings.image.edit.image_guidance) == (
        100,
        7.5,
        1.5,
    )
    assert settings.image.relevance.iqr_factor == 1.5 and settings.scene.relevance.iqr_factor == 2.0
    assert settings.scene.edit.steps == 20 and settings.scene.strength_range == (0.02, 0.98)


def test_a_hub_id_missing_from_the_offline_cache_gets_the_published_defaults():
    assert load_settings("nobody/not-cached-anywhere") == EditorSettings()


@pytest.mark.parametrize("editor", [TOY_EDITOR, TOY_ACTION_EDITOR], ids=["toy-editor", "toy-editor-action"])
def test_the_toy_editors_ship_the_settings_they_were_tuned_for(editor):
    assert load_settings(editor) == TOY_SETTINGS


def test_settings_round_trip_through_the_file(tmp_path):
    changed = dataclasses.replace(
        TOY_SETTINGS, image=dataclasses.replace(TOY_SETTINGS.image, edit=EditConfig(steps=7, text_guidance=3.0))
    )
    changed.save(tmp_path)
    assert load_settings(tmp_path) == changed


def test_keys_left_out_take_the_published_defaults(tmp_path):
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"scene": {"strength_range": [0.5, 1.0]}}))
    settings = load_settings(tmp_path)
    assert settings.scene.strength_range == (0.5, 1.0)
    assert settings.image == EditorSettings().image and settings.scene.edit == EditorSettings().scene.edit


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"image": {"edit": {"threshold": 0.3}}}, "unknown setting image.edit.threshold"),
        ({"scene": {"colour": 1}}, "unknown setting scene.colour"),
        ({"image": {"edit": {"steps": 0}}}, "steps must be at least 1"),
        ({"scene": {"strength_range": [0.9, 0.1]}}, "strength_range must satisfy"),
        ({"image": {"relevance": {"space": "voxel"}}}, "relevance space must be one of"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_a_bad_settings_file_is_named_with_its_problem(tmp_path, content, message):
    (tmp_path / SETTINGS_FILE).write_text(json.dumps(content))
    with pytest.raises(SettingsError, match=message) as error:
        load_settings(tmp_path)
    assert str(tmp_path / SETTINGS_FILE) in str(error.value)


def test_a_bad_settings_file_stops_the_editor_from_loading(plain_checkpoint):
    (plain_checkpoint / SETTINGS_FILE).write_text("{not json")
    with pytest.raises(EditorLoadError, match=SETTINGS_FILE):
        Editor.from_pretrained(plain_checkpoint, device="cpu")


def test_options_left_unset_take_the_recommendation_and_set_ones_win():
    recommended = EditConfig(steps=10, text_guidance=1.25, image_guidance=1.0, threshold=0.9, crop_margin=2.0)
    resolved = EditOptions(text_guidance=3.0).resolve(recommended)
    assert (resolved.steps, resolved.text_guidance, resolved.image_guidance) == (10, 3.0, 1.0)
    # where to edit is the run's choice, not the model's: the options' own defaults
    assert (resolved.threshold, resolved.crop_margin) == (EditConfig.threshold, None)
    relevance = RelevanceOptions(iqr_factor=4.0).resolve(RelevanceConfig(noise_samples=3, space="pixel"))
    assert (relevance.iqr_factor, relevance.noise_samples, relevance.space) == (4.0, 3, "pixel")


class _Stop(Exception):
    pass


def test_the_editor_edits_with_its_recommended_image_settings_unless_given_others(tiny_checkpoint, monkeypatch):
    editor = Editor.from_pretrained(tiny_checkpoint, device="cpu")
    assert editor.settings == TOY_SETTINGS
    seen = []

    def record(config):
        seen.append(config)
        raise _Stop

    monkeypatch.setattr(editor, "_timesteps", record)
    image = torch.rand(1, 3, 16, 16)
    for config in (None, EditConfig(steps=3)):
        with pytest.raises(_Stop):
            editor.edit(image, "make it blue", config=config)
    assert seen == [TOY_SETTINGS.image.edit, EditConfig(steps=3)]


def _parse(*args: str):
    return tyro.cli(AnnotatedBaseConfigUnion, args=["relevance-edit", "--text", "make it blue", *args])


def test_the_3d_pipeline_resolves_its_editors_scene_settings_under_explicit_options(tiny_checkpoint):
    from relevance_nerf.pipeline import RelevanceEditPipelineConfig

    config = _parse("--pipeline.editor", str(tiny_checkpoint), "--pipeline.edit.text-guidance", "3").pipeline
    assert isinstance(config, RelevanceEditPipelineConfig)
    assert config.edit.text_guidance == 3.0 and config.edit.steps is None and config.strength_range is None
    recommended = load_settings(config.editor).scene
    resolved = config.edit.resolve(recommended.edit)
    assert (resolved.steps, resolved.text_guidance, resolved.image_guidance) == (10, 3.0, 1.0)


def test_the_3d_pipeline_has_no_edit_strength_option(capsys):
    """A 3D edit's strength is drawn in the strength range: a fixed strength option would be ignored."""
    with pytest.raises(SystemExit):
        _parse("--pipeline.edit.strength", "0.5")
    assert "--pipeline.edit.strength" in capsys.readouterr().err
