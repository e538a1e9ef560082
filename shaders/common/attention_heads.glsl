// Which query heads a decode-attention workgroup serves (attention.glsl, attention_sg8.glsl).
//
// A KV head has Q_PER_KV query heads (up to 16). The shaders keep RATIO of them per workgroup in
// registers and shared memory (at most 8, the budget every kernel was sized for), so a KV head's
// query heads are served by CHUNKS workgroups of RATIO heads each: workgroup y is KV head
// y / CHUNKS, chunk y % CHUNKS, and its head r is query head chunk * RATIO + r of the KV head.
// Where RATIO does not divide Q_PER_KV, the last chunk's surplus heads compute on a copy of the KV
// head's last query head and store nothing. At ratios up to 8 the host makes RATIO == Q_PER_KV:
// CHUNKS is 1 and every function below folds to what the shaders computed before (h = y, head r).
// The including shader defines ATTENTION_Q_PER_KV_ID, a free specialization constant id.

layout(constant_id = ATTENTION_Q_PER_KV_ID) const uint Q_PER_KV = 1u;
const uint CHUNKS = (Q_PER_KV + RATIO - 1u) / RATIO;

uint group_kv_head() { return CHUNKS == 1u ? gl_WorkGroupID.y : gl_WorkGroupID.y / CHUNKS; }

// Index within its KV head of the workgroup's head r (>= Q_PER_KV for a surplus head).
uint head_in_kv(uint r) { return CHUNKS == 1u ? r : (gl_WorkGroupID.y % CHUNKS) * RATIO + r; }

// The index within its KV head of the query head whose row head r reads.
uint head_read(uint r) { return CHUNKS == 1u ? r : min(head_in_kv(r), Q_PER_KV - 1u); }

// Whether head r is a real query head (its partial is stored).
bool head_stored(uint r) { return CHUNKS == 1u || head_in_kv(r) < Q_PER_KV; }
