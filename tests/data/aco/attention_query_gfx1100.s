BB0:
	s_add_u32 s0, s4, 1                                         ; 80008104
	s_cselect_b32 s0, -1, s0                                    ; 980000c1
	s_mul_hi_u32 s0, s0, 0x49249249                             ; 9680ff00 49249249
	s_lshr_b32 s0, s0, 1                                        ; 85008100
	v_bfe_u32 v0, v0, 0, 10                                     ; d6100000 02290100
	v_mov_b32_e32 v1, v0                                        ; 7e020300
	s_mov_b64 s[6:7], exec                                      ; be86017e
BB1:
	s_mov_b64 s[8:9], exec                                      ; be88017e
	v_cmpx_le_u32_e32 0x80, v1                                  ; 7d9602ff 00000080
BB2:
	s_and_not1_b64 s[8:9], s[8:9], exec                         ; 91887e08
	s_cbranch_scc0 BB16                                         ; bfa1002a
BB9:
	s_mov_b64 exec, s[8:9]                                      ; befe0108
	s_mov_b32 s8, s2                                            ; be880002
	s_movk_i32 s9, 0x8000                                       ; b0098000
	s_clause 0x1                                                ; bf850001
	s_load_b128 s[12:15], s[8:9], 0x10                          ; f4080304 f8000010
	s_load_b128 s[16:19], s[8:9], null                          ; f4080404 f8000000
	v_lshl_add_u32 v2, s0, 7, v1                                ; d6460002 04050e00
	v_lshlrev_b32_e32 v2, 2, v2                                 ; 30040482
	s_waitcnt lgkmcnt(0)                                        ; bf89fc07
	buffer_load_b32 v2, v2, s[12:15], 0 offen                   ; e0500000 80430202
	s_lshl_b32 s1, s4, 7                                        ; 84018704
	s_waitcnt vmcnt(0)                                          ; bf8903f7
	v_add_lshl_u32 v2, s1, v2, 2                                ; d6470002 020a0401
	buffer_load_b32 v2, v2, s[16:19], 0 offen                   ; e0500000 80440202
	v_cmp_gt_u32_e32 vcc, 64, v1                                ; 7c9802c0
	s_waitcnt vmcnt(0)                                          ; bf8903f7
	v_mul_f32_e32 v2, s3, v2                                    ; 10040403
	s_and_saveexec_b64 s[10:11], vcc                            ; be8a216a
	s_cbranch_execz BB12                                        ; bfa50007
BB10:
	s_load_b128 s[12:15], s[8:9], 0x20                          ; f4080304 f8000020
	v_add_lshl_u32 v3, s1, v1, 2                                ; d6470003 020a0201
	s_waitcnt lgkmcnt(0)                                        ; bf89fc07
	buffer_store_b32 v2, v3, s[12:15], 0 offen                  ; e0680000 80430203
BB12:
	s_and_not1_b64 exec, s[10:11], exec                         ; 91fe7e0a
	s_cbranch_execz BB15                                        ; bfa50005
BB13:
	v_lshl_add_u32 v3, v1, 2, 0xffffff00                        ; d6460003 03fd0501 ffffff00
	ds_store_b32 v3, v2                                         ; d8340000 00000203
BB15:
	s_mov_b64 exec, s[10:11]                                    ; befe010a
	v_add_nc_u32_e32 v1, 64, v1                                 ; 4a0202c0
	s_branch BB1                                                ; bfa0ffd1
BB16:
	s_mov_b64 exec, s[6:7]                                      ; befe0106
	s_mov_b64 s[0:1], exec                                      ; be80017e
BB17:
	s_mov_b64 s[6:7], exec                                      ; be86017e
	v_cmpx_le_u32_e32 64, v0                                    ; 7d9600c0
BB18:
	s_waitcnt_depctr 0xfffe                                     ; bf88fffe
	s_and_not1_b64 s[6:7], s[6:7], exec                         ; 91867e06
	s_cbranch_scc0 BB31                                         ; bfa10036
BB25:
	s_waitcnt_depctr 0xfffe                                     ; bf88fffe
	s_mov_b64 exec, s[6:7]                                      ; befe0106
	v_add_nc_u32_e32 v1, 1, v0                                  ; 4a020081
	v_lshrrev_b32_e32 v2, 1, v1                                 ; 32040281
	v_and_b32_e32 v3, 1, v0                                     ; 36060081
	v_cmp_eq_i32_e32 vcc, 0, v3                                 ; 7c840680
	v_cmp_lt_u32_e64 s[6:7], 0, v0                              ; d4490006 00020080
	s_and_b64 s[6:7], s[6:7], vcc                               ; 8b866a06
	v_and_b32_e32 v1, -2, v1                                    ; 360202c2
	v_cmp_eq_i32_e32 vcc, 64, v1                                ; 7c8402c0
	v_cmp_eq_i32_e64 s[8:9], 0, v2                              ; d4420008 00020480
	s_or_b64 vcc, s[8:9], vcc                                   ; 8cea6a08
	v_mov_b32_e32 v1, 0                                         ; 7e020280
	s_mov_b32 s3, 0                                             ; be830080
BB26:
	s_cmp_ge_u32 s3, 64                                         ; bf09c003
	s_cbranch_scc1 BB30                                         ; bfa20013
BB29:
	v_mul_lo_u32 v3, v2, s3                                     ; d72c0003 00000702
	v_and_b32_e32 v3, 63, v3                                    ; 360606bf
	v_cvt_f32_u32_e32 v3, v3                                    ; 7e060d03
	s_lshl_b32 s5, s3, 2                                        ; 84058203
	v_mov_b32_e32 v4, s5                                        ; 7e080205
	ds_load_b32 v4, v4                                          ; d8d80000 04000004
	v_mul_f32_e32 v3, 0x3c800000, v3                            ; 100606ff 3c800000
	v_sin_f32_e32 v5, v3                                        ; 7e0a6b03
	v_cos_f32_e32 v3, v3                                        ; 7e066d03
	s_waitcnt_depctr 0xfff                                      ; bf880fff
	v_cndmask_b32_e64 v3, v3, -v5, s[6:7]                       ; d5010003 401a0b03
	s_waitcnt lgkmcnt(0)                                        ; bf89fc07
	v_fmac_f32_e32 v1, v4, v3                                   ; 56020704
	s_add_u32 s3, s3, 1                                         ; 80038103
	s_branch BB26                                               ; bfa0ffeb
BB30:
	s_mov_b32 s6, s2                                            ; be860002
	s_movk_i32 s7, 0x8000                                       ; b0078000
	s_load_b128 s[8:11], s[6:7], 0x20                           ; f4080203 f8000020
	v_mov_b32_e32 v2, 0x3c800000                                ; 7e0402ff 3c800000
	v_cndmask_b32_e32 v2, 0x3d000000, v2, vcc                   ; 020404ff 3d000000
	v_mul_f32_e32 v1, v2, v1                                    ; 10020302
	v_lshl_add_u32 v2, s4, 7, v0                                ; d6460002 04010e04
	v_lshlrev_b32_e32 v2, 2, v2                                 ; 30040482
	s_waitcnt lgkmcnt(0)                                        ; bf89fc07
	buffer_store_b32 v1, v2, s[8:11], 0 offen offset:256        ; e0680100 80420102
	v_add_nc_u32_e32 v0, 64, v0                                 ; 4a0000c0
	s_branch BB17                                               ; bfa0ffc5
BB31:
	s_endpgm                                                    ; bfb00000
