using System.Globalization;
using System.Runtime.InteropServices;

namespace Serverless.Worker.Registration;

/// <summary>
/// What the host offers to tasks, as the ECS agent registers it: CPU = 1024 units per core,
/// MEMORY = total MiB minus the reservation for the host itself. Pure functions over their inputs.
/// </summary>
public static class HostResources
{
    public const int CpuUnitsPerCore = 1024;

    /// <summary>Registered CPU units: <see cref="WorkerOptions.Cpu"/> or 1024 × <paramref name="cores"/>.</summary>
    public static int Cpu(WorkerOptions options, int cores) => options.Cpu ?? CpuUnitsPerCore * cores;

    /// <summary>
    /// Registered MEMORY in MiB: <see cref="WorkerOptions.MemoryMiB"/>, or
    /// <paramref name="totalMiB"/> − <see cref="WorkerOptions.ReservedMemoryMiB"/> (never below 0).
    /// </summary>
    public static int Memory(WorkerOptions options, long totalMiB)
        => options.MemoryMiB ?? (int)Math.Clamp(totalMiB - options.ReservedMemoryMiB, 0, int.MaxValue);

    /// <summary>MemTotal from the text of <c>/proc/meminfo</c> (<c>MemTotal:  24684012 kB</c>), in MiB; null when absent.</summary>
    public static long? MemTotalMiB(string meminfo)
    {
        foreach (var line in meminfo.Split('\n'))
        {
            if (!line.StartsWith("MemTotal:", StringComparison.Ordinal)) continue;
            var parts = line["MemTotal:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 1 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var kib))
                return kib / 1024;
        }
        return null;
    }

    /// <summary>The host's total memory in MiB: <c>/proc/meminfo</c>, else the engine's MemTotal (bytes).</summary>
    public static long TotalMemoryMiB(long dockerMemTotalBytes)
    {
        try
        {
            if (File.Exists("/proc/meminfo") && MemTotalMiB(File.ReadAllText("/proc/meminfo")) is { } fromProc) return fromProc;
        }
        catch (IOException)
        {
            // Unreadable: fall back to what the engine saw.
        }
        return dockerMemTotalBytes / (1024 * 1024);
    }

    /// <summary>ECS's <c>ecs.cpu-architecture</c> value for a process architecture.</summary>
    public static string CpuArchitecture(Architecture architecture) => architecture switch
    {
        Architecture.X64 => "x86_64",
        Architecture.Arm64 => "arm64",
        Architecture.X86 => "i386",
        Architecture.Arm => "arm",
        _ => architecture.ToString().ToLowerInvariant(),
    };
}
