using ConvaiBridge.Unity;
using UnityEngine;

namespace ConvaiBridge.Samples
{
    /// <summary>
    /// Turns the character's actions into motion: "Move To X" walks to the GameObject named X,
    /// "Pick Up X" parents X to the hand, anything else fires the Animator trigger of that name
    /// (spaces removed, e.g. "Wave"). Unknown targets are ignored, never an error.
    /// </summary>
    [RequireComponent(typeof(ConvaiNpc))]
    public sealed class NpcActionPerformer : MonoBehaviour
    {
        [SerializeField] private float speed = 1.5f;
        [SerializeField] private float stopDistance = 0.8f;
        [SerializeField] private Transform hand;
        [SerializeField] private Animator animator;

        private Transform _goal;

        private void Awake() { GetComponent<ConvaiNpc>().onAction.AddListener(Perform); }

        private void Perform(string action, string target)
        {
            var obj = string.IsNullOrEmpty(target) ? null : GameObject.Find(target);
            switch (action)
            {
                case "Move To":
                    _goal = obj != null ? obj.transform : null;
                    break;
                case "Pick Up":
                    if (obj != null && hand != null) obj.transform.SetParent(hand, false);
                    break;
                default:
                    if (animator != null) animator.SetTrigger(action.Replace(" ", ""));
                    break;
            }
        }

        private void Update()
        {
            if (_goal == null) return;
            var to = new Vector3(_goal.position.x, transform.position.y, _goal.position.z);
            transform.position = Vector3.MoveTowards(transform.position, to, speed * Time.deltaTime);
            transform.LookAt(to);
            if (Vector3.Distance(transform.position, to) <= stopDistance) _goal = null;
        }
    }
}
