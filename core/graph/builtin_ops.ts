/**
 * The table of built-in ops, made fresh for each registry (so a plugin's ops never leak into
 * another run's table).
 *
 * @module
 */

import { OpTable } from "./rules.ts";
import {
  ACTIVATION_RULE,
  ADD_RULE,
  DROPOUT_RULE,
  LAYERNORM_RULE,
  LINEAR_RULE,
  MATMUL_RULE,
} from "./rules_dense.ts";
import {
  ADD_BROADCAST_RULE,
  CONCAT_RULE,
  MEAN_RULE,
  RESHAPE_RULE,
  SLICE_RULE,
  TRANSPOSE_RULE,
} from "./rules_shape.ts";
import { BCE_RULE, MSE_RULE, SOFTMAX_CROSS_ENTROPY_RULE } from "./rules_loss.ts";
import { DROP_PATH_RULE } from "./rules_drop_path.ts";

/** A new table of the built-in ops. */
export function builtinOps(): OpTable {
  return new OpTable({
    linear: LINEAR_RULE,
    matmul: MATMUL_RULE,
    layernorm: LAYERNORM_RULE,
    activation: ACTIVATION_RULE,
    add: ADD_RULE,
    add_broadcast: ADD_BROADCAST_RULE,
    dropout: DROPOUT_RULE,
    drop_path: DROP_PATH_RULE,
    reshape: RESHAPE_RULE,
    transpose: TRANSPOSE_RULE,
    mean: MEAN_RULE,
    concat: CONCAT_RULE,
    slice: SLICE_RULE,
    softmax_cross_entropy: SOFTMAX_CROSS_ENTROPY_RULE,
    bce: BCE_RULE,
    mse: MSE_RULE,
  });
}
