// A printf whose argument does not match its conversion (ze_spirv_test.cpp):
// the build must fail naming the conversion.
kernel void bad_printf(global const float* a) {
  printf("value %d\n", a[get_global_id(0)]);
}
