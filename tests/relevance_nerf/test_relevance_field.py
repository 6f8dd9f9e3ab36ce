import torch

from relevance_nerf.relevance_field import RelevanceHead, edit_mask


def test_head_accepts_half_precision_features_outside_autocast():
    """tinycudann's nerfacto field returns fp16 geometry features; renders run outside autocast."""
    torch.manual_seed(0)
    head = RelevanceHead(in_dim=15, hidden_dim=8, num_layers=2)
    features = torch.randn(4, 24, 15).half()
    relevance = head(features)
    assert relevance.dtype == torch.float32
    assert relevance.shape == (4, 24, 1)
    # The same as the fp32 features the fp16 ones hold exactly.
    torch.testing.assert_close(relevance, head(features.float()), rtol=0, atol=0)


def test_edit_mask_thresholds_the_view_normalised_relevance():
    relevance = torch.tensor([[0.2, 0.3], [0.45, 0.6]])[..., None]  # normalised over the view: 0, 0.25, 0.625, 1
    assert edit_mask(relevance, 0.5)[..., 0].tolist() == [[False, False], [True, True]]
    assert edit_mask(relevance, 0.7)[..., 0].tolist() == [[False, False], [False, True]]
    assert edit_mask(relevance, 0.2)[..., 0].tolist() == [[False, True], [True, True]]
    assert edit_mask(relevance, 0.0).all()  # threshold 0 edits the whole view
