"""BaseModel: steps, batch unpacking, parse_losses, errors, data preprocessor and device."""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchkiln.errors import ConfigError
from torchkiln.model import BaseDataPreprocessor, BaseModel, ImgDataPreprocessor


class ToyModel(BaseModel):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fc = nn.Linear(3, 1, bias=False)
        nn.init.constant_(self.fc.weight, 1.0)

    def forward(self, inputs, data_samples=None, mode="tensor"):
        out = self.fc(inputs).squeeze(1)
        if mode == "loss":
            return {"loss": F.mse_loss(out, data_samples), "acc": (out > 0).float().mean()}
        if mode == "predict":
            return out.detach()
        return out


class ReturnsTensor(ToyModel):
    def forward(self, inputs, data_samples=None, mode="tensor"):
        return self.fc(inputs).sum()


class RecordingPreprocessor(BaseDataPreprocessor):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[bool] = []

    def forward(self, data, training=False):
        self.calls.append(training)
        return super().forward(data, training)


def batch() -> dict[str, torch.Tensor]:
    return {"inputs": torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]]), "data_samples": torch.tensor([1.0, 2.0])}


def test_train_step_matches_manual_sgd(make_optim_wrapper) -> None:
    model = ToyModel()
    ow = make_optim_wrapper(model.parameters(), lr=0.1)
    data = batch()
    x, y = data["inputs"], data["data_samples"]
    w = torch.ones(3, requires_grad=True)
    expected_loss = ((x @ w - y) ** 2).mean()
    expected_loss.backward()
    expected_w = w.detach() - 0.1 * w.grad

    log_vars = model.train_step(data, ow)
    assert ow.contexts == [model]
    assert type(log_vars) is dict  # ordered: "loss" first
    assert list(log_vars) == ["loss", "acc"]
    assert torch.allclose(log_vars["loss"], expected_loss.detach())
    assert all(isinstance(v, torch.Tensor) and not v.requires_grad for v in log_vars.values())
    assert torch.allclose(model.fc.weight.detach().squeeze(0), expected_w)


def test_train_step_runs_preprocess_and_forward_inside_the_wrappers_context(make_optim_wrapper) -> None:
    events: list[str] = []

    class Context:
        def __enter__(self):
            events.append("enter")

        def __exit__(self, *exc):
            events.append("exit")

    class Recording(ToyModel):
        def forward(self, inputs, data_samples=None, mode="tensor"):
            events.append("forward")
            return super().forward(inputs, data_samples, mode)

    model = Recording(data_preprocessor=RecordingPreprocessor())
    ow = make_optim_wrapper(model.parameters())
    ow.optim_context = lambda m: Context()  # e.g. autocast, or DDP's no_sync inside a window
    update = ow.update_params
    ow.update_params = lambda loss: (events.append("update"), update(loss))
    model.train_step(batch(), ow)
    assert model.data_preprocessor.calls == [True]
    assert events == ["enter", "forward", "exit", "update"]


def test_tuple_batches_unpack_positionally(make_optim_wrapper) -> None:
    model = ToyModel()
    ow = make_optim_wrapper(model.parameters())
    data = batch()
    log_tuple = model.train_step((data["inputs"], data["data_samples"]), ow)
    assert log_tuple["loss"].ndim == 0
    out = model.val_step([data["inputs"]])
    assert out.shape == (2,)


def test_val_and_test_step_preprocess_without_training() -> None:
    pre = RecordingPreprocessor()
    model = ToyModel(data_preprocessor=pre)
    out_val = model.val_step(batch())
    out_test = model.test_step(batch())
    assert pre.calls == [False, False]
    assert torch.allclose(out_val, torch.tensor([6.0, 0.0]))
    assert torch.equal(out_val, out_test)


def test_parse_losses_sums_loss_keys_with_list_means() -> None:
    model = ToyModel()
    a = torch.tensor([1.0, 3.0], requires_grad=True)
    losses = {
        "loss_cls": a,  # mean 2
        "loss_box": [torch.tensor([1.0, 1.0]), torch.tensor(4.0)],  # 1 + 4
        "top1": torch.tensor([50, 100]),  # integer, logged as float mean, not summed
    }
    total, log_vars = model.parse_losses(losses)
    assert total.item() == pytest.approx(7.0)
    assert total.requires_grad
    assert list(log_vars) == ["loss", "loss_cls", "loss_box", "top1"]
    assert log_vars["loss_box"].item() == pytest.approx(5.0)
    assert log_vars["top1"].item() == pytest.approx(75.0)
    assert not any(v.requires_grad for v in log_vars.values())


def test_parse_losses_keeps_the_total_under_loss() -> None:
    total, log_vars = ToyModel().parse_losses({"loss": torch.tensor(1.0), "loss_aux": torch.tensor(2.0)})
    assert total.item() == 3.0
    assert log_vars["loss"].item() == 3.0
    assert log_vars["loss_aux"].item() == 2.0


def test_loss_mode_returning_a_tensor_names_the_model(make_optim_wrapper) -> None:
    model = ReturnsTensor()
    with pytest.raises(TypeError, match=r"ReturnsTensor\.forward\(mode='loss'\) must return a dict.*returned Tensor"):
        model.train_step(batch(), make_optim_wrapper(model.parameters()))


def test_loss_dict_with_a_float_value_names_the_key() -> None:
    with pytest.raises(TypeError, match=r"ToyModel.*'loss' as float; expected a tensor"):
        ToyModel().parse_losses({"loss": 0.5})


def test_loss_dict_without_loss_keys() -> None:
    with pytest.raises(ValueError, match="no entry whose name contains 'loss'"):
        ToyModel().parse_losses({"acc": torch.tensor(1.0)})


def test_batch_of_wrong_kind_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match="ToyModel: the data preprocessor returned a Tensor; expected a dict"):
        ToyModel().val_step(torch.ones(2, 3))


def test_batch_keys_that_do_not_fit_forward() -> None:
    with pytest.raises(TypeError, match=r"ToyModel\.forward\(inputs, data_samples=None, mode='tensor'\) cannot take.*'labels'"):
        ToyModel().val_step({"inputs": torch.ones(2, 3), "labels": torch.ones(2)})


def test_type_errors_inside_forward_are_not_rewritten() -> None:
    class Broken(ToyModel):
        def forward(self, inputs, data_samples=None, mode="tensor"):
            raise TypeError("inner problem")

    with pytest.raises(TypeError, match="^inner problem$"):
        Broken().val_step(batch())


def test_data_preprocessor_from_dict_module_or_default() -> None:
    assert type(ToyModel().data_preprocessor) is BaseDataPreprocessor
    built = ToyModel(data_preprocessor=dict(type="ImgDataPreprocessor", mean=[0.5], std=[2.0]))
    assert isinstance(built.data_preprocessor, ImgDataPreprocessor)
    pre = RecordingPreprocessor()
    assert ToyModel(data_preprocessor=pre).data_preprocessor is pre
    with pytest.raises(ConfigError, match="data_preprocessor should be a config dict or an nn.Module"):
        ToyModel(data_preprocessor="BaseDataPreprocessor")


def test_base_model_is_abstract() -> None:
    with pytest.raises(TypeError):
        BaseModel()


def test_preprocessor_device_follows_the_model() -> None:
    model = ToyModel()
    assert model.data_preprocessor.device == torch.device("cpu")
    model.to("meta")
    assert model.data_preprocessor.device.type == "meta"
    assert model.fc.weight.device.type == "meta"
    model.to_empty(device="cpu")
    assert model.data_preprocessor.device == torch.device("cpu")
    model.to(torch.float64)  # a dtype-only move keeps the device
    assert model.data_preprocessor.device == torch.device("cpu")
    model.data_preprocessor.to("meta")
    assert model.data_preprocessor.device.type == "meta"
    model.cpu()
    assert model.data_preprocessor.device == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_moves_batches_to_the_model_device(make_optim_wrapper) -> None:
    model = ToyModel().cuda()
    assert model.data_preprocessor.device.type == "cuda"
    log_vars = model.train_step(batch(), make_optim_wrapper(model.parameters()))
    assert log_vars["loss"].device.type == "cuda"
    model.cpu()
    assert model.data_preprocessor.device.type == "cpu"
