//! Training, distillation and evaluation of networks designed by the optimizer.
