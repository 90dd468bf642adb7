/**
 * YOLO-style grid decoding, non-maximum suppression and mAP (PASCAL VOC, all-point interpolation).
 * Boxes are corners in image fractions: x to the right, y down, (0, 0) the top-left corner.
 */

export interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}
export interface Labelled extends Box {
  cls: number;
}
export interface Detection extends Labelled {
  score: number;
}

export function iou(a: Box, b: Box): number {
  const w = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const h = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  return union > 0 ? inter / union : 0;
}

export interface GridLayout {
  /** Cells per side. */
  grid: number;
  /** Boxes per cell. */
  boxes: number;
  classes: number;
}

/**
 * Detections of one image from its [S, S, B·5 + C] slice starting at `offset`. Cell (i, j) is row i
 * (y) and column j (x); its values are B × (x, y, w, h, conf) then C class probabilities, where
 * x, y ∈ [0, 1] place the box centre inside the cell and w, h are fractions of the image (YOLOv1).
 * The model applies its own sigmoid/softmax; nothing is squashed here. Each box gets the cell's most
 * probable class (first on ties) with score conf · p(class), kept when ≥ `confThreshold`.
 */
export function decodeGrid(data: ArrayLike<number>, offset: number, layout: GridLayout, confThreshold: number): Detection[] {
  const { grid: S, boxes: B, classes: C } = layout;
  const per = B * 5 + C;
  const out: Detection[] = [];
  for (let i = 0; i < S; i++)
    for (let j = 0; j < S; j++) {
      const base = offset + (i * S + j) * per;
      let cls = 0;
      for (let c = 1; c < C; c++) if (data[base + B * 5 + c]! > data[base + B * 5 + cls]!) cls = c;
      const p = data[base + B * 5 + cls]!;
      for (let b = 0; b < B; b++) {
        const [x, y, w, h, conf] = [0, 1, 2, 3, 4].map((k) => data[base + b * 5 + k]!) as [number, number, number, number, number];
        const score = conf * p;
        if (!(score >= confThreshold)) continue;
        const cx = (j + x) / S;
        const cy = (i + y) / S;
        const hw = Math.max(0, w) / 2;
        const hh = Math.max(0, h) / 2;
        out.push({ cls, score, x1: cx - hw, y1: cy - hh, x2: cx + hw, y2: cy + hh });
      }
    }
  return out;
}

/**
 * Greedy class-specific NMS: highest score first (earlier on ties), dropping any later box of the
 * same class whose IoU with a kept one exceeds `iouThreshold`.
 */
export function nms(dets: readonly Detection[], iouThreshold: number): Detection[] {
  const order = [...dets].sort((a, b) => b.score - a.score);
  const kept: Detection[] = [];
  for (const d of order) if (!kept.some((k) => k.cls === d.cls && iou(k, d) > iouThreshold)) kept.push(d);
  return kept;
}

/**
 * VOC average precision of one class: detections of all images ranked by score (stable, so ties keep
 * image order); each is a true positive when its best-overlapping ground truth of the class in its
 * image has IoU ≥ `iouThreshold` and was not matched by a higher-ranked detection, otherwise a false
 * positive. AP is the area under the precision envelope (all-point interpolation, VOC 2010+).
 * Returns null when the class has no ground truth (it is left out of the mean).
 */
export function averagePrecision(
  dets: readonly Detection[][],
  truths: readonly Labelled[][],
  cls: number,
  iouThreshold = 0.5,
): number | null {
  const gts = truths.map((t) => t.filter((g) => g.cls === cls));
  const total = gts.reduce((s, g) => s + g.length, 0);
  if (total === 0) return null;
  const ranked = dets
    .flatMap((d, img) => d.filter((x) => x.cls === cls).map((x) => ({ img, det: x })))
    .sort((a, b) => b.det.score - a.det.score);
  const matched = gts.map((g) => new Array<boolean>(g.length).fill(false));
  const recall: number[] = [];
  const precision: number[] = [];
  let tp = 0;
  ranked.forEach(({ img, det }, rank) => {
    let best = -1;
    let bestIou = 0;
    gts[img]!.forEach((g, k) => {
      const o = iou(det, g);
      if (o > bestIou) {
        bestIou = o;
        best = k;
      }
    });
    if (best >= 0 && bestIou >= iouThreshold && !matched[img]![best]) {
      matched[img]![best] = true;
      tp++;
    }
    recall.push(tp / total);
    precision.push(tp / (rank + 1));
  });
  // Precision envelope from the right, then the area over the recall steps.
  for (let k = precision.length - 2; k >= 0; k--) precision[k] = Math.max(precision[k]!, precision[k + 1]!);
  let ap = 0;
  let prevRecall = 0;
  for (let k = 0; k < recall.length; k++) {
    ap += (recall[k]! - prevRecall) * precision[k]!;
    prevRecall = recall[k]!;
  }
  return ap;
}

export function meanAveragePrecision(
  dets: readonly Detection[][],
  truths: readonly Labelled[][],
  classes: number,
  iouThreshold = 0.5,
): { map: number; perClass: (number | null)[] } {
  const perClass = Array.from({ length: classes }, (_, c) => averagePrecision(dets, truths, c, iouThreshold));
  const present = perClass.filter((a): a is number => a !== null);
  return { map: present.length ? present.reduce((a, b) => a + b, 0) / present.length : 0, perClass };
}
