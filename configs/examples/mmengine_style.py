# An MMEngine-style Python config: it runs, and its top-level plain values are the config.
# It inherits a YAML base and reads a base value with {{_base_.x}} (substituted after the
# merge, as in MMEngine: use it as a value, not in arithmetic).
_base_ = ['_base_/mlp_digits.yaml']

model = dict(hidden=[32])
train_cfg = dict(max_epochs=4)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts={{_base_.train_cfg.val_interval}}),
)
custom_hooks = [dict(type='EMAHook', momentum=0.001, priority='ABOVE_NORMAL')]
