# Faster R-CNN R-50-FPN, 1x schedule, on a 20-class dataset in another folder:
# inherits model, dataset, schedule and runtime, and changes a few keys.
_base_ = [
    '_base_/models/faster_rcnn_r50_fpn.py',
    '_base_/datasets/coco_detection.py',
    '_base_/schedules/schedule_1x.py',
    '_base_/default_runtime.py',
]
data_root = 'data/voc_coco/'
model = dict(backbone=dict(frozen_stages=0), roi_head=dict(bbox_head=dict(num_classes=20)))
train_dataloader = dict(batch_size=4)
optim_wrapper = dict(optimizer=dict(lr=0.01), clip_grad=dict(max_norm=35, norm_type=2))
work_dir = 'work_dirs/faster_rcnn_r50_fpn_1x'
