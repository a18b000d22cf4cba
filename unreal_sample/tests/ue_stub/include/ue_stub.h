// A small hand-written stand-in for the few Unreal Engine headers the plugin's Unreal layer
// (Source/ConvaiBridge) uses, so CI can compile and link that layer without an engine and catch
// syntax, type and API-use errors. Signatures follow UE 5.x; bodies are trivial (nothing here runs).
// Deliberately strict where UE is: TCHAR is char16_t (as on Linux/Mac), UE_LOG rejects an FString
// passed without `*`, TObjectPtr / TWeakObjectPtr / TMap / TArray expose only the members used.
// Not Unreal code: no engine source was copied; it is written from the public API's shape.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "unreal_macros.h"  // check / verify / ensure, as CoreMinimal.h brings them

// ---- basic types ----------------------------------------------------------------------------------
using int8 = int8_t;
using int16 = int16_t;
using int32 = int32_t;
using int64 = int64_t;
using uint8 = uint8_t;
using uint16 = uint16_t;
using uint32 = uint32_t;
using uint64 = uint64_t;
using TCHAR = char16_t;
using ANSICHAR = char;
#define TEXT(x) u##x

#if !defined(DLLEXPORT)
#define DLLEXPORT __attribute__((visibility("default")))
#define DLLIMPORT __attribute__((visibility("default")))
#endif

template <class T>
constexpr std::remove_reference_t<T>&& MoveTemp(T&& v) {
  static_assert(!std::is_const_v<std::remove_reference_t<T>>, "MoveTemp of a const object");
  return static_cast<std::remove_reference_t<T>&&>(v);
}

struct FMemory {
  static void Memzero(void* Dest, size_t Count) { std::memset(Dest, 0, Count); }
};

struct FMath {
  template <class T>
  static constexpr T Max(T A, T B) { return A < B ? B : A; }
  template <class T>
  static constexpr T Min(T A, T B) { return A < B ? A : B; }
  template <class T>
  static constexpr T Clamp(T X, T Lo, T Hi) { return X < Lo ? Lo : (Hi < X ? Hi : X); }
  static int32 RoundToInt(float F) { return static_cast<int32>(std::lround(F)); }
};

// ---- strings -----------------------------------------------------------------------------------------
class FString {
 public:
  FString() = default;
  FString(const TCHAR* Text) : Data(Text ? Text : u"") {}  // NOLINT: implicit, as in UE
  bool IsEmpty() const { return Data.empty(); }
  int32 Len() const { return static_cast<int32>(Data.size()); }
  const TCHAR* operator*() const { return Data.c_str(); }
  FString& operator+=(const TCHAR* Text) { Data += Text; return *this; }
  FString& operator+=(const FString& Other) { Data += Other.Data; return *this; }
  friend FString operator+(const FString& A, const FString& B) { FString R(A); R += B; return R; }
  bool operator==(const FString& Other) const { return Data == Other.Data; }
  FString TrimStartAndEnd() const { return *this; }

 private:
  std::u16string Data;
};

// UTF8_TO_TCHAR / TCHAR_TO_UTF8 convert through temporaries, valid until the end of the full expression.
class FUTF8ToTCHAR {
 public:
  explicit FUTF8ToTCHAR(const ANSICHAR* Utf8) {
    for (const ANSICHAR* p = Utf8; p && *p; ++p) Converted.push_back(static_cast<TCHAR>(static_cast<unsigned char>(*p)));
  }
  const TCHAR* Get() const { return Converted.c_str(); }

 private:
  std::u16string Converted;
};
class FTCHARToUTF8 {
 public:
  explicit FTCHARToUTF8(const TCHAR* Text) {
    for (const TCHAR* p = Text; p && *p; ++p) Converted.push_back(static_cast<char>(*p));
  }
  const ANSICHAR* Get() const { return Converted.c_str(); }

 private:
  std::string Converted;
};
#define UTF8_TO_TCHAR(str) (const TCHAR*)FUTF8ToTCHAR((const ANSICHAR*)(str)).Get()
#define TCHAR_TO_UTF8(str) (ANSICHAR*)FTCHARToUTF8((const TCHAR*)(str)).Get()

class FName {
 public:
  FName() = default;
  FName(const TCHAR* Text) : Value(Text) {}  // NOLINT: implicit, as in UE
  bool operator==(const FName& Other) const { return Value == Other.Value; }
  bool IsNone() const { return Value.IsEmpty(); }

 private:
  FString Value;
};
inline const FName NAME_None;

// ---- containers -------------------------------------------------------------------------------------
template <class T>
class TArray {
 public:
  TArray() = default;
  TArray(std::initializer_list<T> Items) : Items_(Items) {}
  int32 Num() const { return static_cast<int32>(Items_.size()); }
  bool IsValidIndex(int32 Index) const { return Index >= 0 && Index < Num(); }
  T& operator[](int32 Index) { return Items_[static_cast<size_t>(Index)]; }
  const T& operator[](int32 Index) const { return Items_[static_cast<size_t>(Index)]; }
  int32 Add(const T& Item) { Items_.push_back(Item); return Num() - 1; }
  int32 Add(T&& Item) { Items_.push_back(std::move(Item)); return Num() - 1; }
  T& AddDefaulted_GetRef() { Items_.emplace_back(); return Items_.back(); }
  void SetNumZeroed(int32 Count) { Items_.resize(static_cast<size_t>(Count)); }
  void Reset() { Items_.clear(); }
  void Empty() { Items_.clear(); }
  T* GetData() { return Items_.data(); }
  auto begin() { return Items_.begin(); }
  auto end() { return Items_.end(); }
  auto begin() const { return Items_.begin(); }
  auto end() const { return Items_.end(); }

 private:
  std::vector<T> Items_;
};

template <class K, class V>
struct TPair {
  K Key;
  V Value;
};

template <class K, class V>
class TMap {
 public:
  V& Add(const K& Key, const V& Value) {
    if (V* Found = Find(Key)) return *Found = Value;
    Items_.push_back({Key, Value});
    return Items_.back().Value;
  }
  int32 Remove(const K& Key) {
    const auto Before = Items_.size();
    Items_.erase(std::remove_if(Items_.begin(), Items_.end(), [&](const TPair<K, V>& P) { return P.Key == Key; }),
                 Items_.end());
    return static_cast<int32>(Before - Items_.size());
  }
  V* Find(const K& Key) {
    for (TPair<K, V>& P : Items_)
      if (P.Key == Key) return &P.Value;
    return nullptr;
  }
  const V* Find(const K& Key) const {
    for (const TPair<K, V>& P : Items_)
      if (P.Key == Key) return &P.Value;
    return nullptr;
  }
  V& FindOrAdd(const K& Key) {
    if (V* Found = Find(Key)) return *Found;
    return Add(Key, V());
  }
  int32 Num() const { return static_cast<int32>(Items_.size()); }
  void Reset() { Items_.clear(); }
  void Empty() { Items_.clear(); }
  auto begin() { return Items_.begin(); }
  auto end() { return Items_.end(); }
  auto begin() const { return Items_.begin(); }
  auto end() const { return Items_.end(); }

 private:
  std::vector<TPair<K, V>> Items_;
};

template <class T>
using TFunction = std::function<T>;

template <class T>
class TSharedPtr {
 public:
  TSharedPtr() = default;
  explicit TSharedPtr(std::shared_ptr<T> P) : Ptr(std::move(P)) {}
  bool IsValid() const { return Ptr != nullptr; }
  void Reset() { Ptr.reset(); }
  T* operator->() const { return Ptr.get(); }
  T& operator*() const { return *Ptr; }
  T* Get() const { return Ptr.get(); }

 private:
  std::shared_ptr<T> Ptr;
};
template <class T, class... Args>
TSharedPtr<T> MakeShared(Args&&... args) {
  return TSharedPtr<T>(std::make_shared<T>(std::forward<Args>(args)...));
}

// ---- logging ------------------------------------------------------------------------------------------
namespace ELogVerbosity {
enum Type : uint8 { NoLogging, Fatal, Error, Warning, Display, Log, Verbose, VeryVerbose, All };
}
struct FLogCategoryBase {};
namespace ue_stub {
template <class... Args>
void Log(const TCHAR* Format, Args&&... args) {
  static_assert(((!std::is_same_v<std::decay_t<Args>, FString>) && ...), "UE_LOG: pass *String, not an FString");
  static_assert(((!std::is_same_v<std::decay_t<Args>, std::string>) && ...), "UE_LOG: convert std::string first");
  (void)Format;
  ((void)args, ...);
}
}  // namespace ue_stub
#define DECLARE_LOG_CATEGORY_EXTERN(Name, Default, Compile) \
  extern struct FLogCategory##Name : FLogCategoryBase {} Name;
#define DEFINE_LOG_CATEGORY(Name) FLogCategory##Name Name;
#define UE_LOG(Category, Verbosity, Format, ...) \
  ((void)(Category), (void)ELogVerbosity::Verbosity, ::ue_stub::Log(Format, ##__VA_ARGS__))

// ---- reflection macros (UnrealHeaderTool's input; nothing to do without UHT) ------------------------
#define UCLASS(...)
#define USTRUCT(...)
#define UENUM(...)
#define UPROPERTY(...)
#define UFUNCTION(...)
#define UMETA(...)
// GENERATED_BODY expands to what the file's .generated.h defines (tests/ue_stub/generated/).
#define GENERATED_BODY() CVB_STUB_GENERATED_BODY

namespace ue_stub {
template <class... Args>
void Unused(const Args&...) {}
}  // namespace ue_stub
#define CVB_STUB_DELEGATE(Name, Params, ...)                                     \
  struct Name {                                                                  \
    void Broadcast Params const { ::ue_stub::Unused(__VA_ARGS__); }              \
  };
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE(Name) \
  struct Name {                                  \
    void Broadcast() const {}                    \
  };
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE_OneParam(Name, T1, P1) CVB_STUB_DELEGATE(Name, (T1 P1), P1)
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(Name, T1, P1, T2, P2) \
  CVB_STUB_DELEGATE(Name, (T1 P1, T2 P2), P1, P2)
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE_ThreeParams(Name, T1, P1, T2, P2, T3, P3) \
  CVB_STUB_DELEGATE(Name, (T1 P1, T2 P2, T3 P3), P1, P2, P3)
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE_FourParams(Name, T1, P1, T2, P2, T3, P3, T4, P4) \
  CVB_STUB_DELEGATE(Name, (T1 P1, T2 P2, T3 P3, T4 P4), P1, P2, P3, P4)

// ---- UObject ---------------------------------------------------------------------------------------------
enum EObjectFlags : uint32 { RF_NoFlags = 0, RF_Transient = 0x40 };
class UWorld;
class UObject {
 public:
  virtual ~UObject() = default;
  virtual UWorld* GetWorld() const { return nullptr; }
  FString GetName() const { return FString(); }
};

template <class T>
class TObjectPtr {
 public:
  TObjectPtr() = default;
  TObjectPtr(T* P) : Ptr(P) {}  // NOLINT: implicit, as in UE
  TObjectPtr(std::nullptr_t) {}
  TObjectPtr& operator=(T* P) { Ptr = P; return *this; }
  TObjectPtr& operator=(std::nullptr_t) { Ptr = nullptr; return *this; }
  T* operator->() const { return Ptr; }
  T* Get() const { return Ptr; }
  operator T*() const { return Ptr; }  // NOLINT: implicit, as in UE
  explicit operator bool() const { return Ptr != nullptr; }

 private:
  T* Ptr = nullptr;
};

template <class T>
class TWeakObjectPtr {
 public:
  TWeakObjectPtr() = default;
  TWeakObjectPtr(T* P) : Ptr(P) {}  // NOLINT: implicit, as in UE
  T* Get() const { return Ptr; }
  bool IsValid() const { return Ptr != nullptr; }

 private:
  T* Ptr = nullptr;
};

template <class T>
T* NewObject(UObject* Outer, FName Name = NAME_None, EObjectFlags Flags = RF_NoFlags) {
  static_assert(std::is_base_of_v<UObject, T>, "NewObject: not a UObject");
  (void)Outer; (void)Name; (void)Flags;
  return nullptr;
}
template <class T>
const T* GetDefault() {
  static_assert(std::is_base_of_v<UObject, T>, "GetDefault: not a UObject");
  static T Default;
  return &Default;
}
template <class To, class From>
To* Cast(From* Object) {
  static_assert(std::is_base_of_v<UObject, To> && std::is_base_of_v<UObject, std::remove_const_t<From>>, "Cast");
  (void)Object;
  return nullptr;
}
template <class To, class From>
const To* Cast(const From* Object) {
  static_assert(std::is_base_of_v<UObject, To> && std::is_base_of_v<UObject, From>, "Cast");
  (void)Object;
  return nullptr;
}
inline bool IsRunningDedicatedServer() { return false; }

// ---- subsystems, ticking ---------------------------------------------------------------------------------
class FSubsystemCollectionBase {};
class USubsystem : public UObject {
 public:
  virtual bool ShouldCreateSubsystem(UObject* Outer) const { (void)Outer; return true; }
  virtual void Initialize(FSubsystemCollectionBase& Collection) { (void)Collection; }
  virtual void Deinitialize() {}
};
class UGameInstanceSubsystem : public USubsystem {};

class UGameInstance : public UObject {
 public:
  template <class T>
  T* GetSubsystem() const {
    static_assert(std::is_base_of_v<UGameInstanceSubsystem, T>, "GetSubsystem: not a game instance subsystem");
    return nullptr;
  }
  bool IsDedicatedServerInstance() const { return false; }
};
class UWorld : public UObject {
 public:
  UGameInstance* GetGameInstance() const { return nullptr; }
};

struct TStatId {};
enum class ETickableTickType : uint8 { Conditional, Always, Never };
class FTickableGameObject {
 public:
  virtual ~FTickableGameObject() = default;
  virtual void Tick(float DeltaTime) = 0;
  virtual TStatId GetStatId() const = 0;
  virtual ETickableTickType GetTickableTickType() const { return ETickableTickType::Conditional; }
  virtual bool IsTickable() const { return true; }
  virtual bool IsTickableWhenPaused() const { return false; }
  virtual bool IsTickableInEditor() const { return false; }
};
#define RETURN_QUICK_DECLARE_CYCLE_STAT(StatId, GroupId) return TStatId()

// ---- actors and components --------------------------------------------------------------------------------
namespace EEndPlayReason {
enum Type : uint8 { Destroyed, LevelTransition, EndPlayInEditor, RemovedFromWorld, Quit };
}
enum ELevelTick { LEVELTICK_TimeOnly, LEVELTICK_ViewportsOnly, LEVELTICK_All, LEVELTICK_PauseTick };
enum ETickingGroup : uint8 { TG_PrePhysics, TG_DuringPhysics, TG_PostPhysics };
struct FActorComponentTickFunction {
  uint8 bCanEverTick : 1;
  ETickingGroup TickGroup = TG_PrePhysics;
};

class USceneComponent;
class AActor : public UObject {
 public:
  USceneComponent* GetRootComponent() const { return nullptr; }
};
class UActorComponent : public UObject {
 public:
  FActorComponentTickFunction PrimaryComponentTick{};
  AActor* GetOwner() const { return nullptr; }
  void RegisterComponent() {}
  virtual void DestroyComponent(bool bPromoteChildren = false) { (void)bPromoteChildren; }

 protected:
  virtual void BeginPlay() {}
  virtual void EndPlay(const EEndPlayReason::Type EndPlayReason) { (void)EndPlayReason; }

 public:
  virtual void TickComponent(float DeltaTime, ELevelTick TickType, FActorComponentTickFunction* ThisTickFunction) {
    (void)DeltaTime; (void)TickType; (void)ThisTickFunction;
  }
};
class USceneComponent : public UActorComponent {
 public:
  void SetupAttachment(USceneComponent* InParent, FName InSocketName = NAME_None) { (void)InParent; (void)InSocketName; }
};

// ---- audio --------------------------------------------------------------------------------------------------
class USoundBase : public UObject {};
class USoundAttenuation : public UObject {};
enum ESoundGroup : int { SOUNDGROUP_Default, SOUNDGROUP_Effects, SOUNDGROUP_UI, SOUNDGROUP_Music, SOUNDGROUP_Voice };
#define INDEFINITELY_LOOPING_DURATION 10000.0f
class USoundWave : public USoundBase {
 public:
  int32 NumChannels = 0;
  float Duration = 0.0f;
  ESoundGroup SoundGroup = SOUNDGROUP_Default;
  uint8 bLooping : 1;
  uint8 bCanProcessAsync : 1;
  void SetSampleRate(uint32 InSampleRate) { (void)InSampleRate; }
};
class USoundWaveProcedural : public USoundWave {
 public:
  virtual int32 GeneratePCMData(uint8* PCMData, const int32 SamplesNeeded) { (void)PCMData; (void)SamplesNeeded; return 0; }
};
class UAudioComponent : public USceneComponent {
 public:
  uint8 bAutoActivate : 1;
  uint8 bAutoDestroy : 1;
  TObjectPtr<USoundAttenuation> AttenuationSettings;
  void SetSound(USoundBase* NewSound) { (void)NewSound; }
  virtual void Play(float StartTime = 0.0f) { (void)StartTime; }
  virtual void Stop() {}
};

namespace Audio {
struct FAudioCaptureDeviceParams {
  int32 DeviceIndex = -1;
};
using FOnAudioCaptureFunction =
    TFunction<void(const void* InAudio, int32 NumFrames, int32 NumChannels, int32 SampleRate, double StreamTime, bool bOverFlow)>;
using FOnCaptureFunction =
    TFunction<void(const float* InAudio, int32 NumFrames, int32 NumChannels, int32 SampleRate, double StreamTime, bool bOverFlow)>;
class FAudioCapture {
 public:
  bool OpenAudioCaptureStream(const FAudioCaptureDeviceParams& Params, FOnAudioCaptureFunction OnCapture, uint32 NumFramesDesired) {
    (void)Params; (void)OnCapture; (void)NumFramesDesired; return false;
  }
  bool OpenCaptureStream(const FAudioCaptureDeviceParams& Params, FOnCaptureFunction OnCapture, uint32 NumFramesDesired) {
    (void)Params; (void)OnCapture; (void)NumFramesDesired; return false;
  }
  bool CloseStream() { return true; }
  bool StartStream() { return false; }
  bool StopStream() { return true; }
  bool IsStreamOpen() const { return false; }
};
}  // namespace Audio

// ---- settings, modules, versions -----------------------------------------------------------------------------
class UDeveloperSettings : public UObject {
 public:
  virtual FName GetContainerName() const { return TEXT("Project"); }
  virtual FName GetCategoryName() const { return CategoryName; }
  virtual FName GetSectionName() const { return SectionName; }

 protected:
  FName CategoryName;
  FName SectionName;
};

class IModuleInterface {
 public:
  virtual ~IModuleInterface() = default;
  virtual void StartupModule() {}
  virtual void ShutdownModule() {}
};
class FDefaultModuleImpl : public IModuleInterface {};
#define IMPLEMENT_MODULE(ModuleImplClass, ModuleName) \
  extern "C" DLLEXPORT IModuleInterface* InitializeModule_##ModuleName() { return new ModuleImplClass(); }

#define ENGINE_MAJOR_VERSION 5
#define ENGINE_MINOR_VERSION 4
#define ENGINE_PATCH_VERSION 0
#define UE_VERSION_NEWER_THAN(Major, Minor, Patch) \
  (ENGINE_MAJOR_VERSION > (Major) || (ENGINE_MAJOR_VERSION == (Major) && (ENGINE_MINOR_VERSION > (Minor) || \
   (ENGINE_MINOR_VERSION == (Minor) && ENGINE_PATCH_VERSION > (Patch)))))
#define UE_VERSION_OLDER_THAN(Major, Minor, Patch) \
  (ENGINE_MAJOR_VERSION < (Major) || (ENGINE_MAJOR_VERSION == (Major) && (ENGINE_MINOR_VERSION < (Minor) || \
   (ENGINE_MINOR_VERSION == (Minor) && ENGINE_PATCH_VERSION < (Patch)))))
