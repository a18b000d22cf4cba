// Stand-in for the few Input System package (com.unity.inputsystem 1.1+) members the package uses when
// CONVAI_INPUT_SYSTEM is defined (versionDefines). Test hooks: Press / Release, and Frame() per player frame.
#pragma warning disable 1591
namespace UnityEngine.InputSystem
{
    public sealed class InputAction
    {
        private bool _held, _pressedFrame, _releasedFrame;
        public string name;
        public bool enabled { get; private set; }
        public InputAction(string name = null) { this.name = name; }
        public void Enable() { enabled = true; }
        public void Disable() { enabled = false; }
        public bool WasPressedThisFrame() { return enabled && _pressedFrame; }
        public bool WasReleasedThisFrame() { return enabled && _releasedFrame; }
        public bool IsPressed() { return enabled && _held; }

        // -- test hooks --
        public void Press() { if (!_held) { _held = true; _pressedFrame = true; } }
        public void Release() { if (_held) { _held = false; _releasedFrame = true; } }
        public void EndFrame() { _pressedFrame = false; _releasedFrame = false; }
    }

    public sealed class InputActionReference : ScriptableObject
    {
        public InputAction action { get; set; }
    }
}
