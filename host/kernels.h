/* Private to libwrn: every kernel the library launches, named once.
 *
 * X(ID, program, kernel): WRN_K_<ID> is the kernel `kernel` of cl/<program>.cl. Launch code
 * asks for kernels by this enum (wrn_kernel_args), so a kernel is found by index, not by
 * string comparison per launch, and a kernel renamed in cl/ without its entry here fails
 * the first test that launches it with the name in the message.
 *
 * Programs whose kernels need tunables (-D values chosen by the host) are built only as
 * variants (wrn_kernel_variant_args); their sources #error without them. */
#ifndef WRN_KERNELS_H
#define WRN_KERNELS_H

#define WRN_KERNEL_TABLE(X)                                                                  \
  X(AUGMENT, augment, augment)                                                               \
  X(BN_STATS_PARTIAL, bn, bn_stats_partial)                                                  \
  X(BN_STATS_FINAL, bn, bn_stats_final)                                                      \
  X(BN_APPLY, bn, bn_apply)                                                                  \
  X(BN_BWD_PARTIAL, bn, bn_bwd_partial)                                                      \
  X(BN_BWD_FINAL, bn, bn_bwd_final)                                                          \
  X(BN_BWD_DX, bn, bn_bwd_dx)                                                                \
  X(IM2COL, conv, im2col)                                                                    \
  X(IM2COL_K3, conv, im2col_k3)                                                              \
  X(IM2COL_K3S1P1_V8, conv, im2col_k3s1p1_v8)                                                \
  X(IM2COL_K3S2P1_V8, conv, im2col_k3s2p1_v8)                                                \
  X(IM2COL_K1S2P0_V8, conv, im2col_k1s2p0_v8)                                                \
  X(COL2IM, conv, col2im)                                                                    \
  X(COL2IM_K3S1, conv, col2im_k3s1)                                                          \
  X(COL2IM_K3S2, conv, col2im_k3s2)                                                          \
  X(COL2IM_K1S1, conv, col2im_k1s1)                                                          \
  X(COL2IM_K1S2, conv, col2im_k1s2)                                                          \
  X(COL2IM_K3S1P1_V8, conv, col2im_k3s1p1_v8)                                                \
  X(COL2IM_K3S2P1_V8, conv, col2im_k3s2p1_v8)                                                \
  X(COL2IM_K1S2P0_V8, conv, col2im_k1s2p0_v8)                                                \
  X(MAT_TO_NCHW, conv, mat_to_nchw)                                                          \
  X(MAT_TO_NCHW_V4, conv, mat_to_nchw_v4)                                                    \
  X(MAT_TO_NCHW_V16, conv, mat_to_nchw_v16)                                                  \
  X(NCHW_TO_MAT, conv, nchw_to_mat)                                                          \
  X(NCHW_TO_MAT_V4, conv, nchw_to_mat_v4)                                                    \
  X(NCHW_TO_MAT_V16, conv, nchw_to_mat_v16)                                                  \
  X(DROPOUT_APPLY, dropout, dropout_apply)                                                   \
  X(RELU_FWD, eltwise, relu_fwd)                                                             \
  X(RELU_BWD, eltwise, relu_bwd)                                                             \
  X(ADD_FWD, eltwise, add_fwd)                                                               \
  X(AXPY, eltwise, axpy)                                                                     \
  X(GEMM_NN, gemm, gemm_nn)                                                                  \
  X(GEMM_TN, gemm, gemm_tn)                                                                  \
  X(GEMM_NT, gemm, gemm_nt)                                                                  \
  X(BIAS_FILL, linear, bias_fill)                                                            \
  X(COL_SUM, linear, col_sum)                                                                \
  X(SOFTMAX_XENT, loss, softmax_xent)                                                        \
  X(AVGPOOL_FWD, pool, avgpool_fwd)                                                          \
  X(AVGPOOL_GLOBAL_FWD, pool, avgpool_global_fwd)                                            \
  X(AVGPOOL_GLOBAL_BWD, pool, avgpool_global_bwd)                                            \
  X(AVGPOOL_BWD, pool, avgpool_bwd)                                                          \
  X(MAXPOOL_FWD, pool, maxpool_fwd)                                                          \
  X(MAXPOOL_BWD, pool, maxpool_bwd)                                                          \
  X(FMA_PROBE, probe, fma_probe)                                                             \
  X(SGD_STEP, sgd, sgd_step)                                                                 \
  X(WINO_INPUT, winograd, wino_input)                                                        \
  X(WINO_FILTER, winograd, wino_filter)                                                      \
  X(WINO_OUTPUT, winograd, wino_output)                                                      \
  X(WINO_GRAD_OUTPUT, winograd, wino_grad_output)                                            \
  X(WINO_GRAD_FILTER, winograd, wino_grad_filter)                                            \
  X(DIRECT_CONV, direct, direct_conv)                                                         \
  X(DIRECT_CONVT2, direct, direct_convt2)                                                     \
  X(DIRECT_WGRAD, direct, direct_wgrad)                                                       \
  X(DIRECT_WSUM, direct, direct_wsum)                                                         \
  X(IGEMM, implicit, igemm)                                                                  \
  X(IGEMM_REDUCE, implicit, igemm_reduce)                                                    \
  X(FFT_PAD, fft, fft_pad)                                                                   \
  X(FFT_MAC, fft, fft_mac)                                                                   \
  X(FFT_CROP, fft, fft_crop)

/* Programs built only as variants (their tunables come from the host as -D values). */
#define WRN_VARIANT_ONLY_PROGRAMS "bn direct gemm implicit winograd"

typedef enum wrn_kid {
#define WRN_KID_ENUM(id, prog, name) WRN_K_##id,
  WRN_KERNEL_TABLE(WRN_KID_ENUM)
#undef WRN_KID_ENUM
  WRN_K_COUNT
} wrn_kid;

#endif
