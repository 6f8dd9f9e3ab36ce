"""The random 3D layouts that judge the method on scenes nobody tuned on."""

from toyworld.pairs import EVALUATION_SEEDS, TRAIN_SEEDS, evaluation_seeds, parse_recolour
from toyworld.scene import SceneSpec, camera_poses, render_view
from toyworld.scene_layouts import SCENE_LAYOUT_SEEDS, layout_scene

DEMO_INSTRUCTION = "make the red cube blue"


def test_layout_seeds_are_their_own():
    seeds = [seed for split in SCENE_LAYOUT_SEEDS.values() for seed in split]
    pair_seeds = {*TRAIN_SEEDS, *(s for split in EVALUATION_SEEDS for s in evaluation_seeds(split).values())}
    assert len(set(seeds)) == len(seeds) and pair_seeds.isdisjoint(seeds)


def test_each_layout_recolours_one_of_its_objects_to_another_colour():
    scenes = [layout_scene(seed) for split in SCENE_LAYOUT_SEEDS.values() for seed in split]
    for scene in scenes:
        recolour = parse_recolour(scene.instruction)
        assert recolour is not None and recolour.target_colour != recolour.colour
        assert f"{recolour.colour}_{recolour.shape}" in {o.name for o in scene.spec.objects}
        assert 3 <= len(scene.spec.objects) <= 4
    assert DEMO_INSTRUCTION not in {scene.instruction for scene in scenes}
    assert len({scene.spec.objects for scene in scenes}) == len(scenes)  # no layout repeats another
    assert layout_scene(2001) == layout_scene(2001)


def test_the_edited_object_is_seen_in_most_views():
    for split in SCENE_LAYOUT_SEEDS.values():
        for seed in split:
            layout = layout_scene(seed)
            recolour = parse_recolour(layout.instruction)
            small = SceneSpec(objects=layout.spec.objects, views=12, size=32, supersample=1, seed=seed)
            seen = [
                render_view(small, c2w)[1][f"{recolour.colour}_{recolour.shape}"].sum() >= 4
                for c2w in camera_poses(small)
            ]
            assert sum(seen) >= 0.75 * len(seen), (seed, seen)
