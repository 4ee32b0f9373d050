// A kernel that requires 16-wide sub-groups (ze_spirv_test.cpp): the
// device's are one work item wide, so the build must fail naming it.
// Compiled like features.cl (OpenCL C 2.0).
__attribute__((intel_reqd_sub_group_size(16))) kernel void wide_sub_groups(global uint* o) {
  o[get_global_id(0)] = get_sub_group_size();
}
