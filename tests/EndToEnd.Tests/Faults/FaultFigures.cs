using System.Globalization;

namespace Serverless.EndToEnd.Tests.Faults;

/// <summary>
/// Where a fault test writes its figures, one line a run: the fault, seconds to converge, writes
/// lost, orphans. <c>scripts/faults.sh</c> runs the catalogue several times and turns the lines
/// into the README's table. The folder is <c>FAULT_RESULTS</c>, or TestResults/faults.
/// </summary>
public static class FaultFigures
{
    private static readonly object Gate = new();

    public static void Record(string fault, TimeSpan converged, int writesLost, int orphans)
    {
        var folder = Environment.GetEnvironmentVariable("FAULT_RESULTS") is { Length: > 0 } configured
            ? configured
            : Path.Combine(AppContext.BaseDirectory, "TestResults", "faults");
        Directory.CreateDirectory(folder);
        var line = string.Create(CultureInfo.InvariantCulture, $"{fault}\t{converged.TotalSeconds:0.0}\t{writesLost}\t{orphans}\n");
        lock (Gate) File.AppendAllText(Path.Combine(folder, "faults.tsv"), line);
    }
}
