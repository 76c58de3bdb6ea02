using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace CfOrch.Core.Profiles;

/// <summary>
/// YamlDotNet's parser, stopped at the first event that crosses a <see cref="YamlLimits"/> bound with a
/// <see cref="ProfileException"/> that says which bound, and where. Whatever reads through it (a
/// <c>YamlStream.Load</c>, an event loop) never does more work than the limits allow.
/// </summary>
internal sealed class LimitedParser(string yaml, string file) : IParser
{
    private readonly Parser _inner = new(new StringReader(yaml));
    private readonly YamlShapeCheck _check = new();

    public ParsingEvent? Current => _inner.Current;

    public bool MoveNext()
    {
        if (!_inner.MoveNext())
        {
            return false;
        }

        var current = _inner.Current!;
        if (_check.Visit(current) is { } problem)
        {
            throw new ProfileException([new ProfileError(file, (int)current.Start.Line, (int)current.Start.Column, _check.Path, problem)]);
        }

        return true;
    }
}
