// Stand-in for UnrealHeaderTool's output: USTRUCTs' GENERATED_BODY() adds nothing here.
#undef CVB_STUB_GENERATED_BODY
#define CVB_STUB_GENERATED_BODY
