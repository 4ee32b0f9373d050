// A kernel that needs images (the ImageBasic capability), which the sim
// device does not support: zeModuleCreate must fail naming the capability.
kernel void sample(read_only image2d_t img, sampler_t s, global float4* out) {
  out[get_global_id(0)] = read_imagef(img, s, (int2)((int)get_global_id(0), 0));
}
