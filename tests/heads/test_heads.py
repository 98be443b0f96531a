import torch

from polymodal.heads import ClassificationHead, RegressionHead


def test_classification_head_loss_and_probabilities():
    torch.manual_seed(0)
    head = ClassificationHead(8, 3, hidden=4, class_weights=torch.tensor([1.0, 2.0, 1.0]))
    fused = torch.randn(5, 8, requires_grad=True)
    logits = head(fused)
    assert logits.shape == (5, 3)
    loss = head.loss(logits, torch.tensor([0, 1, 2, 1, 0]))
    loss.backward()
    assert torch.isfinite(loss) and fused.grad is not None
    torch.testing.assert_close(head.probabilities(logits).sum(1), torch.ones(5))


def test_regression_head_learns_in_standardised_units():
    head = RegressionHead(4, target_mean=100.0, target_std=10.0)
    output = torch.tensor([0.0, 1.0])
    torch.testing.assert_close(head.values(output), torch.tensor([100.0, 110.0]))
    assert head.loss(output, torch.tensor([100.0, 110.0])).item() == 0.0
    assert RegressionHead(4, loss="huber").loss(torch.zeros(2), torch.ones(2)).item() > 0
