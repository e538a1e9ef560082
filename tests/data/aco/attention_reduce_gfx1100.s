BB0:
	v_bfe_u32 v0, v0, 0, 10                                     ; d6100000 02290100
	s_mulk_i32 s3, 0x82                                         ; b8030082
	s_mul_i32 s0, s5, 0x82                                      ; 9600ff05 00000082
	v_mov_b32_e32 v1, v0                                        ; 7e020300
	v_mov_b32_e32 v2, 0xff61b1e6                                ; 7e0402ff ff61b1e6
	s_mov_b64 s[8:9], exec                                      ; be88017e
BB1:
	s_mov_b64 s[10:11], exec                                    ; be8a017e
	v_cmpx_le_u32_e32 s4, v1                                    ; 7d960204
BB2:
	s_and_not1_b64 s[10:11], s[10:11], exec                     ; 918a7e0a
	s_cbranch_scc0 BB10                                         ; bfa10010
BB9:
	s_mov_b64 exec, s[10:11]                                    ; befe010a
	s_mov_b32 s10, s2                                           ; be8a0002
	s_movk_i32 s11, 0x8000                                      ; b00b8000
	s_load_b128 s[12:15], s[10:11], null                        ; f4080305 f8000000
	v_mul_lo_u32 v3, v1, s3                                     ; d72c0003 00000701
	v_add_lshl_u32 v3, s0, v3, 2                                ; d6470003 020a0600
	s_waitcnt lgkmcnt(0)                                        ; bf89fc07
	buffer_load_b32 v3, v3, s[12:15], 0 offen                   ; e0500000 80430303
	v_add_nc_u32_e32 v1, 64, v1                                 ; 4a0202c0
	s_waitcnt vmcnt(0)                                          ; bf8903f7
	v_max_f32_e32 v2, v2, v3                                    ; 20040702
	s_branch BB1                                                ; bfa0ffec
BB10:
	s_mov_b64 exec, s[8:9]                                      ; befe0108
	v_lshlrev_b32_e32 v1, 2, v0                                 ; 30020082
	ds_store_b32 v1, v2                                         ; d8340000 00000201
	s_mov_b32 s1, 64                                            ; be8100c0
BB11:
	s_cmp_ge_u32 1, s1                                          ; bf090181
	s_cbranch_scc1 BB21                                         ; bfa20013
BB14:
	s_add_u32 s7, s1, 1                                         ; 80078101
	s_lshr_b32 s7, s7, 1                                        ; 85078107
	s_sub_i32 s1, s1, s7                                        ; 81810701
	s_mov_b64 s[8:9], exec                                      ; be88017e
	v_cmpx_gt_u32_e32 s1, v0                                    ; 7d980001
	s_cbranch_execz BB20                                        ; bfa5000a
BB15:
	ds_load_b32 v2, v1                                          ; d8d80000 02000001
	v_add_lshl_u32 v3, s7, v0, 2                                ; d6470003 020a0007
	ds_load_b32 v3, v3                                          ; d8d80000 03000003
	s_waitcnt lgkmcnt(0)                                        ; bf89fc07
	v_max_f32_e32 v2, v2, v3                                    ; 20040702
	ds_store_b32 v1, v2                                         ; d8340000 00000201
BB20:
	s_mov_b64 exec, s[8:9]                                      ; befe0108
	s_mov_b32 s1, s7                                            ; be810007
	s_branch BB11                                               ; bfa0ffeb
BB21:
	v_mov_b32_e32 v1, 0                                         ; 7e020280
	ds_load_b32 v2, v1                                          ; d8d80000 02000001
	v_lshrrev_b32_e32 v3, 3, v0                                 ; 32060083
	v_and_b32_e32 v4, 7, v0                                     ; 36080087
	v_lshlrev_b32_e32 v5, 2, v4                                 ; 300a0882
	v_lshl_add_u32 v5, s6, 5, v5                                ; d6460005 04150a06
	v_mov_b32_e32 v6, v3                                        ; 7e0c0303
	v_lshrrev_b64 v[7:8], 0, 0                                  ; d73d0007 00010080
	v_lshrrev_b64 v[9:10], 0, 0                                 ; d73d0009 00010080
	v_mov_b32_e32 v11, 0                                        ; 7e160280
	s_mov_b64 s[6:7], exec                                      ; be86017e
BB22:
	s_mov_b64 s[8:9], exec                                      ; be88017e
	v_cmpx_le_u32_e32 s4, v6                                    ; 7d960c04
BB23:
	s_and_not1_b64 s[8:9], s[8:9], exec                         ; 91887e08
	s_cbranch_scc0 BB31                                         ; bfa10075
BB30:
	s_mov_b64 exec, s[8:9]                                      ; befe0108
	s_mov_b32 s8, s2                                            ; be880002
	s_movk_i32 s9, 0x8000                                       ; b0098000
	s_load_b128 s[8:11], s[8:9], null                           ; f4080204 f8000000
	s_add_u32 s1, s4, -1                                        ; 8001c104
	v_min_u32_e32 v12, s1, v6                                   ; 26180c01
	v_mul_lo_u32 v12, v12, s3                                   ; d72c000c 0000070c
	v_add_nc_u32_e32 v12, s0, v12                               ; 4a181800
	v_lshlrev_b32_e32 v13, 2, v12                               ; 301a1882
	v_add_lshl_u32 v12, v12, v5, 2                              ; d647000c 020a0b0c
	v_add_nc_u32_e32 v14, 8, v6                                 ; 4a1c0c88
	v_min_u32_e32 v15, s1, v14                                  ; 261e1c01
	v_mul_lo_u32 v15, v15, s3                                   ; d72c000f 0000070f
	v_add_nc_u32_e32 v15, s0, v15                               ; 4a1e1e00
	v_lshlrev_b32_e32 v16, 2, v15                               ; 30201e82
	v_add_lshl_u32 v15, v15, v5, 2                              ; d647000f 020a0b0f
	v_add_nc_u32_e32 v17, 16, v6                                ; 4a220c90
	v_min_u32_e32 v18, s1, v17                                  ; 26242201
	v_mul_lo_u32 v18, v18, s3                                   ; d72c0012 00000712
	v_add_nc_u32_e32 v18, s0, v18                               ; 4a242400
	v_lshlrev_b32_e32 v19, 2, v18                               ; 30262482
	v_add_lshl_u32 v18, v18, v5, 2                              ; d6470012 020a0b12
	v_add_nc_u32_e32 v20, 24, v6                                ; 4a280c98
	v_min_u32_e32 v21, s1, v20                                  ; 262a2801
	v_mul_lo_u32 v21, v21, s3                                   ; d72c0015 00000715
	v_add_nc_u32_e32 v21, s0, v21                               ; 4a2a2a00
	v_lshlrev_b32_e32 v22, 2, v21                               ; 302c2a82
	v_add_lshl_u32 v21, v21, v5, 2                              ; d6470015 020a0b15
	s_waitcnt lgkmcnt(0)                                        ; bf89fc07
	s_clause 0x7                                                ; bf850007
	buffer_load_b64 v[24:25], v13, s[8:11], 0 offen             ; e0540000 8042180d
	buffer_load_b128 v[28:31], v12, s[8:11], 0 offen offset:8   ; e05c0008 80421c0c
	buffer_load_b64 v[12:13], v16, s[8:11], 0 offen             ; e0540000 80420c10
	buffer_load_b128 v[32:35], v15, s[8:11], 0 offen offset:8   ; e05c0008 8042200f
	buffer_load_b64 v[26:27], v19, s[8:11], 0 offen             ; e0540000 80421a13
	buffer_load_b128 v[36:39], v18, s[8:11], 0 offen offset:8   ; e05c0008 80422412
	buffer_load_b64 v[18:19], v22, s[8:11], 0 offen             ; e0540000 80421216
	buffer_load_b128 v[40:43], v21, s[8:11], 0 offen offset:8   ; e05c0008 80422815
	s_mov_b32 s1, 0x3fb8aa3b                                    ; be8100ff 3fb8aa3b
	v_cmp_gt_u32_e32 vcc, s4, v6                                ; 7c980c04
	v_cmp_gt_u32_e64 s[8:9], s4, v14                            ; d44c0008 00021c04
	v_cmp_gt_u32_e64 s[10:11], s4, v17                          ; d44c000a 00022204
	v_cmp_gt_u32_e64 s[12:13], s4, v20                          ; d44c000c 00022804
	v_add_nc_u32_e32 v6, 32, v6                                 ; 4a0c0ca0
	s_waitcnt vmcnt(7)                                          ; bf891ff7
	v_subrev_f32_e32 v14, v2, v24                               ; 0a1c3102
	v_mul_f32_e32 v14, s1, v14                                  ; 101c1c01
	v_exp_f32_e32 v14, v14                                      ; 7e1c4b0e
	s_waitcnt_depctr 0xfff                                      ; bf880fff
	v_cndmask_b32_e32 v14, 0, v14, vcc                          ; 021c1c80
	v_fmac_f32_e32 v11, v25, v14                                ; 56161d19
	s_waitcnt vmcnt(6)                                          ; bf891bf7
	v_fmac_f32_e32 v7, v28, v14                                 ; 560e1d1c
	v_fmac_f32_e32 v8, v29, v14                                 ; 56101d1d
	v_fmac_f32_e32 v9, v30, v14                                 ; 56121d1e
	v_fmac_f32_e32 v10, v31, v14                                ; 56141d1f
	s_waitcnt vmcnt(5)                                          ; bf8917f7
	v_subrev_f32_e32 v12, v2, v12                               ; 0a181902
	v_mul_f32_e32 v12, s1, v12                                  ; 10181801
	v_exp_f32_e32 v12, v12                                      ; 7e184b0c
	s_waitcnt_depctr 0xfff                                      ; bf880fff
	v_cndmask_b32_e64 v12, 0, v12, s[8:9]                       ; d501000c 00221880
	v_fmac_f32_e32 v11, v13, v12                                ; 5616190d
	s_waitcnt vmcnt(4)                                          ; bf8913f7
	v_fmac_f32_e32 v7, v32, v12                                 ; 560e1920
	v_fmac_f32_e32 v8, v33, v12                                 ; 56101921
	v_fmac_f32_e32 v9, v34, v12                                 ; 56121922
	v_fmac_f32_e32 v10, v35, v12                                ; 56141923
	s_waitcnt vmcnt(3)                                          ; bf890ff7
	v_subrev_f32_e32 v44, v2, v26                               ; 0a583502
	v_mul_f32_e32 v44, s1, v44                                  ; 10585801
	v_exp_f32_e32 v44, v44                                      ; 7e584b2c
	s_waitcnt_depctr 0xfff                                      ; bf880fff
	v_cndmask_b32_e64 v44, 0, v44, s[10:11]                     ; d501002c 002a5880
	v_fmac_f32_e32 v11, v27, v44                                ; 5616591b
	s_waitcnt vmcnt(2)                                          ; bf890bf7
	v_fmac_f32_e32 v7, v36, v44                                 ; 560e5924
	v_fmac_f32_e32 v8, v37, v44                                 ; 56105925
	v_fmac_f32_e32 v9, v38, v44                                 ; 56125926
	v_fmac_f32_e32 v10, v39, v44                                ; 56145927
	s_waitcnt vmcnt(1)                                          ; bf8907f7
	v_subrev_f32_e32 v44, v2, v18                               ; 0a582502
	v_mul_f32_e32 v44, s1, v44                                  ; 10585801
	v_exp_f32_e32 v44, v44                                      ; 7e584b2c
	s_waitcnt_depctr 0xfff                                      ; bf880fff
	v_cndmask_b32_e64 v44, 0, v44, s[12:13]                     ; d501002c 00325880
	v_fmac_f32_e32 v11, v19, v44                                ; 56165913
	s_waitcnt vmcnt(0)                                          ; bf8903f7
	v_fmac_f32_e32 v7, v40, v44                                 ; 560e5928
	v_fmac_f32_e32 v8, v41, v44                                 ; 56105929
	v_fmac_f32_e32 v9, v42, v44                                 ; 5612592a
	v_fmac_f32_e32 v10, v43, v44                                ; 5614592b
	s_branch BB22                                               ; bfa0ff87
BB31:
	s_mov_b64 exec, s[6:7]                                      ; befe0106
	s_waitcnt lgkmcnt(0)                                        ; bf89fc07
	v_lshlrev_b32_e32 v2, 4, v0                                 ; 30040084
	ds_store_b128 v2, v[7:10] offset:256                        ; db7c0100 00000702
	s_mov_b64 s[0:1], exec                                      ; be80017e
	v_cmpx_eq_i32_e32 0, v4                                     ; 7d840880
	s_cbranch_execz BB37                                        ; bfa50003
BB32:
	v_lshlrev_b32_e32 v3, 2, v3                                 ; 30060682
	ds_store_b32 v3, v11 offset:1280                            ; d8340500 00000b03
BB37:
	s_mov_b64 exec, s[0:1]                                      ; befe0100
	s_mov_b64 s[0:1], exec                                      ; be80017e
	v_cmpx_gt_u32_e32 8, v0                                     ; 7d980088
	s_cbranch_execz BB43                                        ; bfa5004d
BB38:
	ds_load_b128 v[8:11], v2 offset:256                         ; dbfc0100 08000002
	ds_load_b128 v[12:15], v1 offset:1280                       ; dbfc0500 0c000001
	ds_load_b128 v[16:19], v2 offset:384                        ; dbfc0180 10000002
	s_waitcnt lgkmcnt(0)                                        ; bf89fc07
	v_add_f32_e32 v0, v8, v16                                   ; 06002108
	v_add_f32_e32 v3, v9, v17                                   ; 06062309
	v_add_f32_e32 v4, v10, v18                                  ; 0608250a
	v_add_f32_e32 v6, v11, v19                                  ; 060c270b
	v_add_f32_e32 v7, v12, v13                                  ; 060e1b0c
	ds_load_b128 v[8:11], v2 offset:512                         ; dbfc0200 08000002
	ds_load_b128 v[16:19], v2 offset:640                        ; dbfc0280 10000002
	ds_load_b128 v[20:23], v2 offset:768                        ; dbfc0300 14000002
	ds_load_b128 v[24:27], v1 offset:1296                       ; dbfc0510 18000001
	ds_load_b128 v[28:31], v2 offset:896                        ; dbfc0380 1c000002
	ds_load_b128 v[32:35], v2 offset:1024                       ; dbfc0400 20000002
	ds_load_b128 v[36:39], v2 offset:1152                       ; dbfc0480 24000002
	s_movk_i32 s3, 0x8000                                       ; b0038000
	s_load_b128 s[8:11], s[2:3], 0x10                           ; f4080201 f8000010
	s_waitcnt lgkmcnt(6)                                        ; bf89fc67
	v_add_f32_e32 v8, v0, v8                                    ; 06101100
	v_add_f32_e32 v9, v3, v9                                    ; 06121303
	v_add_f32_e32 v10, v4, v10                                  ; 06141504
	v_add_f32_e32 v6, v6, v11                                   ; 060c1706
	v_add_f32_e32 v7, v14, v7                                   ; 060e0f0e
	s_waitcnt lgkmcnt(5)                                        ; bf89fc57
	v_add_f32_e32 v8, v8, v16                                   ; 06102108
	v_add_f32_e32 v9, v9, v17                                   ; 06122309
	v_add_f32_e32 v18, v10, v18                                 ; 0624250a
	v_add_f32_e32 v6, v6, v19                                   ; 060c2706
	v_add_f32_e32 v7, v15, v7                                   ; 060e0f0f
	s_waitcnt lgkmcnt(4)                                        ; bf89fc47
	v_add_f32_e32 v8, v8, v20                                   ; 06102908
	v_add_f32_e32 v19, v9, v21                                  ; 06262b09
	v_add_f32_e32 v22, v18, v22                                 ; 062c2d12
	v_add_f32_e32 v6, v6, v23                                   ; 060c2f06
	s_waitcnt lgkmcnt(3)                                        ; bf89fc37
	v_add_f32_e32 v7, v24, v7                                   ; 060e0f18
	s_waitcnt lgkmcnt(2)                                        ; bf89fc27
	v_add_f32_e32 v28, v8, v28                                  ; 06383908
	v_add_f32_e32 v29, v19, v29                                 ; 063a3b13
	v_add_f32_e32 v30, v22, v30                                 ; 063c3d16
	v_add_f32_e32 v6, v6, v31                                   ; 060c3f06
	v_add_f32_e32 v31, v25, v7                                  ; 063e0f19
	s_waitcnt lgkmcnt(1)                                        ; bf89fc17
	v_add_f32_e32 v28, v28, v32                                 ; 0638411c
	v_add_f32_e32 v29, v29, v33                                 ; 063a431d
	v_add_f32_e32 v30, v30, v34                                 ; 063c451e
	v_add_f32_e32 v32, v6, v35                                  ; 06404706
	v_add_f32_e32 v31, v26, v31                                 ; 063e3f1a
	s_waitcnt lgkmcnt(0)                                        ; bf89fc07
	v_add_f32_e32 v28, v28, v36                                 ; 0638491c
	v_add_f32_e32 v29, v29, v37                                 ; 063a4b1d
	v_add_f32_e32 v30, v30, v38                                 ; 063c4d1e
	v_add_f32_e32 v4, v32, v39                                  ; 06084f20
	v_add_f32_e32 v0, v27, v31                                  ; 06003f1b
	v_rcp_f32_e32 v0, v0                                        ; 7e005500
	v_lshl_add_u32 v1, s5, 7, v5                                ; d6460001 04150e05
	s_waitcnt_depctr 0xfff                                      ; bf880fff
	v_mul_f32_e32 v8, v0, v28                                   ; 10103900
	v_lshlrev_b32_e32 v1, 2, v1                                 ; 30020282
	v_mul_f32_e32 v9, v0, v29                                   ; 10123b00
	v_mul_f32_e32 v10, v0, v30                                  ; 10143d00
	v_mul_f32_e32 v11, v0, v4                                   ; 10160900
	buffer_store_b128 v[8:11], v1, s[8:11], 0 offen             ; e0740000 80420801
BB43:
	s_endpgm                                                    ; bfb00000
