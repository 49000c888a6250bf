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
  PAD_RULE,
  RESHAPE_RULE,
  SLICE_RULE,
  TRANSPOSE_RULE,
} from "./rules_shape.ts";
import { BCE_RULE, MSE_RULE, SOFTMAX_CROSS_ENTROPY_RULE } from "./rules_loss.ts";
import { DROP_PATH_RULE } from "./rules_drop_path.ts";
import { POSITION_ENCODING_RULE } from "./rules_position.ts";
import { IM2COL_RULE, INDEX_BITS_RULE, MAX_POOL_RULE, SCALE_RULE } from "./rules_conv.ts";
import { FFF_ENTROPY_RULE, FFF_NODES_RULE, FFF_RULE } from "./rules_fff.ts";

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
    pad: PAD_RULE,
    softmax_cross_entropy: SOFTMAX_CROSS_ENTROPY_RULE,
    bce: BCE_RULE,
    mse: MSE_RULE,
    position_encoding: POSITION_ENCODING_RULE,
    im2col: IM2COL_RULE,
    max_pool: MAX_POOL_RULE,
    scale: SCALE_RULE,
    index_bits: INDEX_BITS_RULE,
    fff_nodes: FFF_NODES_RULE,
    fff_entropy: FFF_ENTROPY_RULE,
    fff: FFF_RULE,
  });
}
