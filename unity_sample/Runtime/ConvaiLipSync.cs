using System;
using System.Collections.Generic;
using ConvaiBridge.Audio;
using UnityEngine;

namespace ConvaiBridge.Unity
{
    /// <summary>
    /// Drives a face's blendshapes from a ConvaiNpc's lip-sync weights at the audio playback clock.
    /// Each mapping names a source weight (a viseme such as "aa", or an ARKit name such as "JawOpen")
    /// and a blendshape of the SkinnedMeshRenderer.
    /// </summary>
    [AddComponentMenu("Convai Bridge/Convai Lip Sync")]
    public sealed class ConvaiLipSync : MonoBehaviour
    {
        [Serializable]
        public sealed class Mapping
        {
            [Tooltip("Viseme (sil pp ff th dd kk ch ss nn rr aa e ih oh ou) or ARKit name (JawOpen, MouthFunnel, ...).")]
            public string source = "aa";
            [Tooltip("Blendshape name on the face mesh.")]
            public string blendshape = "";
            [Tooltip("Blendshape weight at source weight 1 (Unity blendshapes go 0..100).")]
            public float scale = 100f;
            [NonSerialized] public int sourceIndex = -1;
            [NonSerialized] public int shapeIndex = -1;
            [NonSerialized] public string resolvedFor;
        }

        [SerializeField] private ConvaiNpc npc;
        [SerializeField] private SkinnedMeshRenderer face;
        [SerializeField] private List<Mapping> mappings = new List<Mapping>();
        [Tooltip("0 = jump to each new value, towards 1 = smoother (and later).")]
        [Range(0f, 0.95f)] [SerializeField] private float smoothing = 0.4f;

        private readonly float[] _weights = new float[LipSyncTrack.ArkitNames.Length];
        private float[] _current = new float[0];
        private bool[] _driving = new bool[0];

        /// <summary>Blendshape weight below which a silent face is handed back (Unity weights go 0..100).</summary>
        public const float ReleaseBelow = 0.5f;

        private void Reset()
        {
            npc = GetComponentInParent<ConvaiNpc>();
            face = GetComponentInChildren<SkinnedMeshRenderer>();
        }

        /// <summary>
        /// After the Animator (which evaluates between Update and LateUpdate). While the NPC speaks the
        /// mapped blendshapes follow the voice; when it falls silent they ease to 0, are set to 0 once and
        /// then left alone, so an Animator (idle face, blinks, expressions) drives them again.
        /// </summary>
        private void LateUpdate()
        {
            if (npc == null || face == null || face.sharedMesh == null) return;
            if (_current.Length != mappings.Count)
            {
                _current = new float[mappings.Count];
                _driving = new bool[mappings.Count];
            }
            bool live = npc.TryGetLipSync(_weights);
            string format = npc.LipSyncFormat;
            for (int i = 0; i < mappings.Count; i++)
            {
                var m = mappings[i];
                if (m.resolvedFor != format)
                {
                    m.sourceIndex = LipSyncTrack.IndexOf(format, m.source);
                    m.shapeIndex = face.sharedMesh.GetBlendShapeIndex(m.blendshape);
                    m.resolvedFor = format;
                }
                if (m.shapeIndex < 0) continue;
                if (live && m.sourceIndex >= 0)
                {
                    _current[i] = Mathf.Lerp(_weights[m.sourceIndex] * m.scale, _current[i], smoothing);
                    _driving[i] = true;
                    face.SetBlendShapeWeight(m.shapeIndex, _current[i]);
                }
                else if (_driving[i])
                {
                    _current[i] = Mathf.Lerp(0f, _current[i], smoothing);
                    if (Math.Abs(_current[i]) < ReleaseBelow)
                    {
                        _current[i] = 0f;
                        _driving[i] = false;
                    }
                    face.SetBlendShapeWeight(m.shapeIndex, _current[i]);
                }
            }
        }
    }
}
