//! What to change in the PyTorch model when an ONNX operator has no private implementation.

/// Advice for an unsupported ONNX `op_type` (what a PyTorch user changes to make it import).
pub fn advice(op: &str) -> &'static str {
    match op {
        "Sigmoid" | "HardSigmoid" => {
            "sigmoid gates (squeeze-and-excitation, nn.Sigmoid, nn.Hardsigmoid) have no private \
             implementation: remove the SE blocks or replace the activation by nn.ReLU"
        }
        "HardSwish" | "Swish" => "replace nn.Hardswish / nn.SiLU by nn.ReLU",
        "Gelu" | "Erf" => "replace nn.GELU by nn.ReLU",
        "Tanh" | "Softplus" | "Softsign" | "Elu" | "Selu" | "Celu" | "Mish" => {
            "replace this activation by nn.ReLU"
        }
        "LeakyRelu" | "PRelu" => "replace nn.LeakyReLU / nn.PReLU by nn.ReLU",
        "Softmax" | "LogSoftmax" => {
            "drop the final softmax from the exported model (the client can apply it to the \
             logits; the top-1 class is the same)"
        }
        "LayerNormalization"
        | "InstanceNormalization"
        | "GroupNormalization"
        | "Sqrt"
        | "Pow"
        | "ReduceSumSquare"
        | "ReduceL2" => {
            "replace nn.LayerNorm / GroupNorm / InstanceNorm by nn.BatchNorm2d (folded into the \
             convolution at import)"
        }
        "Resize" | "Upsample" => {
            "upsampling is not supported: use a classifier without nn.Upsample / F.interpolate \
             (for AdaptiveAvgPool2d, choose an input size the pool's output size divides)"
        }
        "Einsum" | "Attention" | "MultiHeadAttention" => {
            "attention (products of two secret tensors) is not supported: use a CNN"
        }
        "ReduceMax" | "GlobalMaxPool" => {
            "replace global max pooling by nn.AdaptiveAvgPool2d(1) or nn.MaxPool2d over the \
             whole feature map"
        }
        "LRN" => "remove local response normalisation (nn.LocalResponseNorm)",
        "Dropout" => "export the model in eval mode (model.eval()) so dropout is an identity",
        "Transpose" => {
            "only the channel shuffle (view → transpose(1, 2) → view) is supported; keep \
             tensors in NCHW"
        }
        "ConvTranspose" => "transposed convolutions are not supported: use a classifier CNN",
        "Mul" | "Div" => {
            "multiplying two computed tensors (gating, attention) has no private \
             implementation; multiply by constants only"
        }
        "Where" => {
            "only torch.where(mask, relu(x), x) with a constant mask (a per-element ReLU mask) \
             is supported"
        }
        _ => {
            "rewrite this part with nn.Conv2d, nn.BatchNorm2d, nn.ReLU / ReLU6, nn.MaxPool2d, \
             nn.AvgPool2d / AdaptiveAvgPool2d, nn.Linear, torch.cat, residual additions and \
             constant scaling"
        }
    }
}
