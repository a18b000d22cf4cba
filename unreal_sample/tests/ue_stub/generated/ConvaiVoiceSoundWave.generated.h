// Stand-in for UnrealHeaderTool's output: GENERATED_BODY() declares Super (see ue_stub.h).
#undef CVB_STUB_GENERATED_BODY
#define CVB_STUB_GENERATED_BODY \
 public:                        \
  using Super = USoundWaveProcedural;          \
\
 private:
