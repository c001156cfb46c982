//! The config engine.
//!
//! A load runs these steps, in order:
//!
//! 1. read the file (YAML, JSON or TOML by extension; `.py` through [`Host::load_python`]);
//! 2. load its `_base_` files recursively, merge them in order (later wins), substitute
//!    MMEngine `{{_base_.x}}` / `{{$ENV:default}}` placeholders, and merge the file on top
//!    ([`merge`]: maps merge, anything else replaces, `_delete_: true` replaces the base map);
//! 3. apply the command-line overrides ([`overrides`]), so that `${...}` sees overridden values;
//! 4. interpolate `${...}` references ([`interpolate`]);
//! 5. record where every leaf came from ([`provenance`]).

pub mod dump;
pub mod error;
pub mod inherit;
pub mod interpolate;
pub mod merge;
pub mod overrides;
pub mod parse;
pub mod provenance;
#[cfg(test)]
mod testutil;
pub mod value;

use std::collections::BTreeSet;
use std::path::Path;

use indexmap::IndexMap;

pub use dump::{dump_config_yaml, dump_yaml};
pub use error::{ConfigError, ErrorKind, Result};
pub use inherit::{Host, Loader, NoHost, PythonRun};
pub use parse::Format;
pub use provenance::Sources;
pub use value::{Kind, Map, Origin, Value};

/// A fully loaded config.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The final tree: merged, overridden, interpolated, without `_base_` and `_delete_`.
    pub value: Value,
    /// Dotted leaf path -> `file:line:col`, `file` or `--cfg-options KEY=VALUE`.
    pub provenance: IndexMap<String, String>,
    /// Dotted paths referenced by `${...}` and `{{_base_....}}`, sorted.
    pub referenced: Vec<String>,
    /// Every file read, in the order read.
    pub files: Vec<String>,
}

/// Load the config file at `path`, then apply `overrides` and interpolate.
pub fn load_file(path: &Path, overrides: &[String], host: &mut dyn Host) -> Result<Loaded> {
    let mut loader = Loader::new(host);
    let value = loader.load_file(path)?;
    finish(loader, value, overrides)
}

/// Load a config given as text in `format`; relative `_base_` paths start at `base_dir`
/// (the current directory when `None`).
pub fn load_str(
    text: &str,
    format: Format,
    base_dir: Option<&Path>,
    overrides: &[String],
    host: &mut dyn Host,
) -> Result<Loaded> {
    let cwd;
    let dir = match base_dir {
        Some(d) => d,
        None => {
            cwd = std::env::current_dir().map_err(|e| ConfigError::new(format!("no current directory: {e}")))?;
            &cwd
        }
    };
    let mut loader = Loader::new(host);
    let value = loader.load_text(text, format, dir)?;
    finish(loader, value, overrides)
}

fn finish(loader: Loader<'_>, mut value: Value, overrides: &[String]) -> Result<Loaded> {
    let Loader { mut sources, files, mut referenced, .. } = loader;
    overrides::apply_overrides(&mut value, overrides, &mut sources)?;
    let value = interpolate::interpolate(value, Some(&sources), &mut referenced)?;
    let provenance = provenance::collect(&value, &sources);
    Ok(Loaded { value, provenance, referenced: referenced.into_iter().collect(), files })
}

/// Apply overrides to a plain tree (no files involved).
pub fn apply_overrides(value: &mut Value, overrides: &[String]) -> Result<()> {
    overrides::apply_overrides(value, overrides, &mut Sources::new())
}

/// Interpolate a plain tree (no files involved).
pub fn interpolate_value(value: Value) -> Result<Value> {
    interpolate::interpolate(value, None, &mut BTreeSet::new())
}

#[cfg(test)]
mod tests {
    use super::testutil::TempDir;
    use super::*;
    use crate::config::parse::parse_yaml_str;

    fn y(s: &str) -> Value {
        parse_yaml_str(s, "t.yaml").unwrap()
    }

    fn ovs(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// A detection-style config set: model, dataset with pipelines, schedule, runtime, child.
    fn detection_set(d: &TempDir) -> std::path::PathBuf {
        d.write(
            "_base_/models/faster_rcnn.yaml",
            r#"
model:
  type: FasterRCNN
  data_preprocessor: {type: DetDataPreprocessor, mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], bgr_to_rgb: true, pad_size_divisor: 32}
  backbone:
    type: ResNet
    depth: 50
    num_stages: 4
    out_indices: [0, 1, 2, 3]
    frozen_stages: 1
    norm_cfg: {type: BN, requires_grad: true}
    norm_eval: true
    style: pytorch
    init_cfg: {type: Pretrained, checkpoint: torchvision://resnet50}
  neck: {type: FPN, in_channels: [256, 512, 1024, 2048], out_channels: 256, num_outs: 5}
  rpn_head:
    type: RPNHead
    in_channels: 256
    feat_channels: 256
    anchor_generator: {type: AnchorGenerator, scales: [8], ratios: [0.5, 1.0, 2.0], strides: [4, 8, 16, 32, 64]}
    bbox_coder: {type: DeltaXYWHBBoxCoder, target_means: [0.0, 0.0, 0.0, 0.0], target_stds: [1.0, 1.0, 1.0, 1.0]}
    loss_cls: {type: CrossEntropyLoss, use_sigmoid: true, loss_weight: 1.0}
    loss_bbox: {type: L1Loss, loss_weight: 1.0}
  roi_head:
    type: StandardRoIHead
    bbox_head:
      type: Shared2FCBBoxHead
      in_channels: 256
      fc_out_channels: 1024
      num_classes: ${num_classes}
      loss_cls: {type: CrossEntropyLoss, use_sigmoid: false, loss_weight: 1.0}
num_classes: 80
"#,
        );
        d.write(
            "_base_/datasets/coco.yaml",
            r#"
dataset_type: CocoDataset
data_root: data/coco/
train_pipeline:
  - {type: LoadImageFromFile}
  - {type: LoadAnnotations, with_bbox: true}
  - {type: Resize, scale: [1333, 800], keep_ratio: true}
  - {type: RandomFlip, prob: 0.5}
  - {type: PackDetInputs}
test_pipeline:
  - {type: LoadImageFromFile}
  - {type: Resize, scale: [1333, 800], keep_ratio: true}
  - {type: PackDetInputs, meta_keys: [img_id, img_path, ori_shape, img_shape, scale_factor]}
train_dataloader:
  batch_size: 2
  num_workers: 2
  persistent_workers: true
  sampler: {type: DefaultSampler, shuffle: true}
  dataset:
    type: ${dataset_type}
    data_root: ${data_root}
    ann_file: annotations/instances_train2017.json
    data_prefix: {img: train2017/}
    pipeline: ${train_pipeline}
val_dataloader:
  batch_size: 1
  num_workers: 2
  sampler: {type: DefaultSampler, shuffle: false}
  dataset: {type: '${dataset_type}', data_root: '${data_root}', ann_file: annotations/instances_val2017.json, pipeline: '${test_pipeline}', test_mode: true}
val_evaluator: {type: CocoMetric, ann_file: "${data_root}annotations/instances_val2017.json", metric: bbox}
"#,
        );
        d.write(
            "_base_/schedules/schedule_1x.yaml",
            r#"
train_cfg: {type: EpochBasedTrainLoop, max_epochs: 12, val_interval: 1}
val_cfg: {type: ValLoop}
param_scheduler:
  - {type: LinearLR, start_factor: 0.001, by_epoch: false, begin: 0, end: 500}
  - {type: MultiStepLR, begin: 0, end: 12, by_epoch: true, milestones: [8, 11], gamma: 0.1}
optim_wrapper:
  type: OptimWrapper
  optimizer: {type: SGD, lr: 0.02, momentum: 0.9, weight_decay: 0.0001}
"#,
        );
        d.write(
            "_base_/default_runtime.yaml",
            r#"
default_scope: mmdet
default_hooks:
  timer: {type: IterTimerHook}
  logger: {type: LoggerHook, interval: 50}
  param_scheduler: {type: ParamSchedulerHook}
  checkpoint: {type: CheckpointHook, interval: 1}
env_cfg: {cudnn_benchmark: false, dist_cfg: {backend: nccl}}
log_level: INFO
load_from: null
resume: false
"#,
        );
        d.write(
            "configs/faster_rcnn_r50_fpn_1x_voc.yaml",
            r#"
_base_:
  - ../_base_/models/faster_rcnn.yaml
  - ../_base_/datasets/coco.yaml
  - ../_base_/schedules/schedule_1x.yaml
  - ../_base_/default_runtime.yaml
num_classes: 20
data_root: data/VOCdevkit/
optim_wrapper:
  optimizer: {_delete_: true, type: AdamW, lr: 0.0001, weight_decay: 0.05}
work_dir: ./work_dirs/${model.backbone.type}_${num_classes}
"#,
        )
    }

    #[test]
    fn full_pipeline_on_a_detection_set() {
        let d = TempDir::new("full");
        let child = detection_set(&d);
        let loaded = load_file(
            &child,
            &ovs(&["train_cfg.max_epochs=3", "param_scheduler.1.milestones=[2,3]", "num_classes=5"]),
            &mut NoHost,
        )
        .unwrap();
        let v = &loaded.value;
        assert_eq!(v.get_path("model.roi_head.bbox_head.num_classes").unwrap().kind, Kind::Int(5));
        assert_eq!(*v.get_path("optim_wrapper.optimizer").unwrap(), y("{type: AdamW, lr: 0.0001, weight_decay: 0.05}"));
        assert_eq!(v.get_path("train_cfg.max_epochs").unwrap().kind, Kind::Int(3));
        assert_eq!(*v.get_path("param_scheduler.1.milestones").unwrap(), y("[2, 3]"));
        assert_eq!(v.get_path("work_dir").unwrap().kind, Kind::Str("./work_dirs/ResNet_5".into()));
        assert_eq!(v.get_path("train_dataloader.dataset.pipeline.3.prob").unwrap().kind, Kind::Float(0.5));
        assert_eq!(
            v.get_path("val_evaluator.ann_file").unwrap().kind,
            Kind::Str("data/VOCdevkit/annotations/instances_val2017.json".into())
        );
        assert!(v.get_path("_base_").is_none());
        assert_eq!(loaded.files.len(), 5);
        assert!(loaded.files[0].ends_with("faster_rcnn_r50_fpn_1x_voc.yaml"));
        for r in ["num_classes", "data_root", "train_pipeline", "test_pipeline", "dataset_type", "model.backbone.type"]
        {
            assert!(loaded.referenced.iter().any(|x| x == r), "{r} in {:?}", loaded.referenced);
        }
        let p = &loaded.provenance;
        assert_eq!(p["train_cfg.max_epochs"], "--cfg-options train_cfg.max_epochs=3");
        assert_eq!(p["param_scheduler.1.milestones.0"], "--cfg-options param_scheduler.1.milestones=[2,3]");
        assert!(
            p["train_cfg.val_interval"].ends_with("_base_/schedules/schedule_1x.yaml:2:56"),
            "{}",
            p["train_cfg.val_interval"]
        );
        assert!(
            p["optim_wrapper.optimizer.lr"].ends_with("configs/faster_rcnn_r50_fpn_1x_voc.yaml:10:44"),
            "{}",
            p["optim_wrapper.optimizer.lr"]
        );
        assert!(p["model.backbone.depth"].ends_with("models/faster_rcnn.yaml:7:5"), "{}", p["model.backbone.depth"]);
        // The interpolated leaf is attributed to the line that references the value.
        assert!(p["model.roi_head.bbox_head.num_classes"].ends_with("models/faster_rcnn.yaml:30:7"));
        assert!(p["data_root"].ends_with("faster_rcnn_r50_fpn_1x_voc.yaml:8:1"));
    }

    #[test]
    fn overrides_apply_before_interpolation() {
        let l = load_str("a: 1\nb: ${a}\n", Format::Yaml, None, &ovs(&["a=7"]), &mut NoHost).unwrap();
        assert_eq!(l.value, y("a: 7\nb: 7\n"));
        let l = load_str("a: 1\nb: 2\n", Format::Yaml, None, &ovs(&["b=${a}"]), &mut NoHost).unwrap();
        assert_eq!(l.value, y("a: 1\nb: 1\n"));
        assert_eq!(l.provenance["a"], "<string>:1:1");
    }

    #[test]
    fn dump_then_load_is_a_fixed_point() {
        let d = TempDir::new("fixed");
        let child = detection_set(&d);
        let loaded = load_file(&child, &[], &mut NoHost).unwrap();
        let text = dump_yaml(&loaded.value);
        let again = load_str(&text, Format::Yaml, None, &[], &mut NoHost).unwrap();
        assert_eq!(again.value, loaded.value);
        assert_eq!(dump_yaml(&again.value), text);
    }

    #[test]
    fn config_dump_keeps_literal_references_and_placeholders() {
        // `\${root}` and `\{{...}}` in a file are literal text; the dump must keep them so.
        let src = "root: /data\nesc: \\${root}/x\nboth: '\\{{$HOME}} \\{{_base_.a}} $\\${{'\nkeep: ${root}\n";
        let loaded = load_str(src, Format::Yaml, None, &[], &mut NoHost).unwrap();
        assert_eq!(
            loaded.value,
            y("root: /data\nesc: '${root}/x'\nboth: '{{$HOME}} {{_base_.a}} $${{'\nkeep: /data\n")
        );
        let text = dump_config_yaml(&loaded.value);
        let again = load_str(&text, Format::Yaml, None, &[], &mut NoHost).unwrap();
        assert_eq!(again.value, loaded.value, "dump was:\n{text}");
        assert_eq!(dump_config_yaml(&again.value), text);
        // the plain dump writes the strings as they are
        assert!(dump_yaml(&loaded.value).contains("esc: \"${root}/x\"\n"));
        // odd runs of braces and backslashes round-trip too
        for s in ["{{{", "{{{{", "\\${", "\\{{", "${${", "$\\{{", "${{x}}}", "a}}{{b", "{{_base_.x}}"] {
            let mut m = Map::new();
            m.insert("s".to_string(), Value::str(s));
            let v = Value::new(Kind::Map(m));
            let back = load_str(&dump_config_yaml(&v), Format::Yaml, None, &[], &mut NoHost).unwrap();
            assert_eq!(back.value, v, "{s:?}");
        }
    }

    #[test]
    fn load_is_fast() {
        // Not a timed assertion (machines vary); prints the number for `cargo test -- --nocapture`.
        let d = TempDir::new("speed");
        let child = detection_set(&d);
        let o = ovs(&["train_cfg.max_epochs=3", "param_scheduler.1.milestones=[16,22]", "model.backbone.depth=101"]);
        let n = 200;
        let t = std::time::Instant::now();
        for _ in 0..n {
            load_file(&child, &o, &mut NoHost).unwrap();
        }
        eprintln!(
            "load + merge + 3 overrides + interpolation: {:.1} us per load",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
