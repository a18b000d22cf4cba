using System;

namespace ConvaiBridge.Tests
{
    /// <summary>Unit tests entry point: `mono unit.exe VECTOR_DIR`; prints `RESULT passed=N failed=M`.</summary>
    public static class UnitMain
    {
        public static int Main(string[] args)
        {
            if (args.Length < 1)
            {
                Console.Error.WriteLine("usage: unit.exe PATH/TO/protocol/vectors");
                return 2;
            }
            var runner = new TestRunner();
            CodecTests.VectorDir = args[0];
            VectorTests.Register(runner, args[0]);
            runner.AddAll(typeof(CodecTests));
            runner.AddAll(typeof(RuntimeTests));
            runner.AddAll(typeof(ClientLoopTests));
            runner.AddAll(typeof(ConnectionPathTests));
            runner.AddAll(typeof(ResampleTests));
            runner.Run();
            Console.WriteLine("RESULT passed=" + runner.Passed + " failed=" + runner.Failed);
            // Exit explicitly: a failed test may leave a thread behind.
            Environment.Exit(runner.Failed == 0 ? 0 : 1);
            return 0;
        }
    }
}
