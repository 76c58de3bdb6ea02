using Mono.Cecil;
using Mono.Cecil.Cil;

namespace CfOrch.Tests.Architecture;

/// <summary>
/// The namespaces of an assembly and what each references, read from the compiled assembly with Mono.Cecil: base types,
/// interfaces, fields, properties, events, method signatures, generic arguments and constraints, custom attributes
/// (with their <c>typeof</c> arguments), and the IL of method bodies (locals, catch types, type/method/field operands).
/// A nested type (a lambda's closure, an iterator, a state machine) counts as its outermost declaring type.
/// What the compiler leaves no trace of in IL is not seen: the use of a <c>const</c> (its value is copied), <c>nameof</c>,
/// <c>cref</c>s in comments, <c>using</c> directives.
/// </summary>
public sealed class NamespaceGraph
{
    private readonly Dictionary<(string From, string To), (string FromType, string ToType)> _edges = [];
    private readonly Dictionary<(string From, string To), HashSet<(string FromType, string ToType)>> _uses = [];

    private NamespaceGraph()
    {
    }

    /// <summary>Each edge between two different namespaces, with one example type on each side.</summary>
    public IReadOnlyDictionary<(string From, string To), (string FromType, string ToType)> Edges => _edges;

    /// <summary>Every pair of types behind an edge (for a closer look when a rule fails).</summary>
    public IReadOnlyCollection<(string FromType, string ToType)> Uses(string from, string to) =>
        _uses.TryGetValue((from, to), out var uses) ? uses : [];

    public static NamespaceGraph Read(params string[] assemblyPaths)
    {
        var graph = new NamespaceGraph();
        foreach (var path in assemblyPaths)
        {
            using var assembly = AssemblyDefinition.ReadAssembly(path, new ReaderParameters { ReadSymbols = false });
            foreach (var type in assembly.MainModule.GetTypes())
            {
                var (from, fromType) = Owner(type);
                if (from is null)
                {
                    continue;
                }

                foreach (var referenced in References(type))
                {
                    var (to, toType) = Owner(referenced);
                    if (to is not null && to != from)
                    {
                        graph._edges.TryAdd((from, to), (fromType!, toType!));
                        if (!graph._uses.TryGetValue((from, to), out var uses))
                        {
                            graph._uses[(from, to)] = uses = [];
                        }

                        uses.Add((fromType!, toType!));
                    }
                }
            }
        }

        return graph;
    }

    /// <summary>The namespace a type belongs to (its outermost declaring type's), and that type's full name.</summary>
    public static (string? Namespace, string? TypeName) Owner(TypeReference type)
    {
        while (type.DeclaringType is not null)
        {
            type = type.DeclaringType;
        }

        var ns = type.Namespace;

        // Razor's generic type inference helpers live in __Blazor.{component's namespace}.{component}.
        if (ns.StartsWith("__Blazor.", StringComparison.Ordinal))
        {
            var inner = ns["__Blazor.".Length..];
            var lastDot = inner.LastIndexOf('.');
            return lastDot < 0 ? (null, null) : (inner[..lastDot], inner);
        }

        // <Module>, <PrivateImplementationDetails> and other compiler-made types have no namespace of their own.
        return ns.Length == 0 ? (null, null) : (ns, type.FullName);
    }

    /// <summary>The edges inside the namespaces a filter selects.</summary>
    public IEnumerable<KeyValuePair<(string From, string To), (string FromType, string ToType)>> EdgesWithin(Func<string, bool> inside) =>
        _edges.Where(e => inside(e.Key.From) && inside(e.Key.To));

    /// <summary>The strongly connected components of more than one namespace among those a filter selects (Tarjan).</summary>
    public IReadOnlyList<IReadOnlyList<string>> Cycles(Func<string, bool> inside)
    {
        var successors = EdgesWithin(inside)
            .GroupBy(e => e.Key.From, e => e.Key.To)
            .ToDictionary(g => g.Key, g => g.Order(StringComparer.Ordinal).ToList(), StringComparer.Ordinal);
        var nodes = successors.Keys.Concat(successors.Values.SelectMany(v => v)).Distinct().Order(StringComparer.Ordinal).ToList();

        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var low = new Dictionary<string, int>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        var onStack = new HashSet<string>(StringComparer.Ordinal);
        var components = new List<IReadOnlyList<string>>();
        var next = 0;

        void Visit(string node)
        {
            index[node] = low[node] = next++;
            stack.Push(node);
            onStack.Add(node);
            foreach (var successor in successors.GetValueOrDefault(node) ?? [])
            {
                if (!index.TryGetValue(successor, out var successorIndex))
                {
                    Visit(successor);
                    low[node] = Math.Min(low[node], low[successor]);
                }
                else if (onStack.Contains(successor))
                {
                    low[node] = Math.Min(low[node], successorIndex);
                }
            }

            if (low[node] == index[node])
            {
                var component = new List<string>();
                string member;
                do
                {
                    member = stack.Pop();
                    onStack.Remove(member);
                    component.Add(member);
                }
                while (member != node);

                if (component.Count > 1)
                {
                    components.Add([.. component.Order(StringComparer.Ordinal)]);
                }
            }
        }

        foreach (var node in nodes)
        {
            if (!index.ContainsKey(node))
            {
                Visit(node);
            }
        }

        return components;
    }

    /// <summary>Each cycle as its namespaces and the edges between them, each edge with an example type on either side.</summary>
    public string DescribeCycles(IReadOnlyList<IReadOnlyList<string>> cycles) =>
        string.Join(Environment.NewLine, cycles.Select(component =>
        {
            var members = component.ToHashSet(StringComparer.Ordinal);
            var edges = EdgesWithin(members.Contains)
                .OrderBy(e => e.Key.From, StringComparer.Ordinal)
                .ThenBy(e => e.Key.To, StringComparer.Ordinal)
                .Select(e => "    " + DescribeEdge(e));
            return $"  cycle: {string.Join(" ↔ ", component)}{Environment.NewLine}{string.Join(Environment.NewLine, edges)}";
        }));

    public static string DescribeEdge(KeyValuePair<(string From, string To), (string FromType, string ToType)> edge) =>
        $"{edge.Key.From} → {edge.Key.To} (e.g. {edge.Value.FromType} uses {edge.Value.ToType})";

    private static List<TypeReference> References(TypeDefinition type)
    {
        var found = new List<TypeReference>();
        AddType(found, type.BaseType);
        foreach (var implementation in type.Interfaces)
        {
            AddType(found, implementation.InterfaceType);
            AddAttributes(found, implementation);
        }

        AddGenericParameters(found, type);
        AddAttributes(found, type);
        foreach (var field in type.Fields)
        {
            AddType(found, field.FieldType);
            AddAttributes(found, field);
        }

        foreach (var property in type.Properties)
        {
            AddType(found, property.PropertyType);
            AddAttributes(found, property);
            foreach (var parameter in property.Parameters)
            {
                AddType(found, parameter.ParameterType);
            }
        }

        foreach (var @event in type.Events)
        {
            AddType(found, @event.EventType);
            AddAttributes(found, @event);
        }

        foreach (var method in type.Methods)
        {
            AddMethod(found, method);
        }

        return found;
    }

    private static void AddMethod(List<TypeReference> found, MethodDefinition method)
    {
        AddSignature(found, method);
        AddGenericParameters(found, method);
        AddAttributes(found, method);
        AddAttributes(found, method.MethodReturnType);
        foreach (var parameter in method.Parameters)
        {
            AddAttributes(found, parameter);
        }

        foreach (var overridden in method.Overrides)
        {
            AddMethodReference(found, overridden);
        }

        if (!method.HasBody)
        {
            return;
        }

        foreach (var variable in method.Body.Variables)
        {
            AddType(found, variable.VariableType);
        }

        foreach (var handler in method.Body.ExceptionHandlers)
        {
            AddType(found, handler.CatchType);
        }

        foreach (var instruction in method.Body.Instructions)
        {
            switch (instruction.Operand)
            {
                case TypeReference operandType:
                    AddType(found, operandType);
                    break;
                case MethodReference operandMethod:
                    AddMethodReference(found, operandMethod);
                    break;
                case FieldReference operandField:
                    AddType(found, operandField.DeclaringType);
                    AddType(found, operandField.FieldType);
                    break;
                case CallSite callSite:
                    AddSignature(found, callSite);
                    break;
                default:
                    break;
            }
        }
    }

    private static void AddMethodReference(List<TypeReference> found, MethodReference method)
    {
        AddType(found, method.DeclaringType);
        AddSignature(found, method);
        if (method is GenericInstanceMethod generic)
        {
            foreach (var argument in generic.GenericArguments)
            {
                AddType(found, argument);
            }
        }
    }

    private static void AddSignature(List<TypeReference> found, IMethodSignature signature)
    {
        AddType(found, signature.ReturnType);
        foreach (var parameter in signature.Parameters)
        {
            AddType(found, parameter.ParameterType);
        }
    }

    private static void AddGenericParameters(List<TypeReference> found, IGenericParameterProvider provider)
    {
        foreach (var parameter in provider.GenericParameters)
        {
            AddAttributes(found, parameter);
            foreach (var constraint in parameter.Constraints)
            {
                AddType(found, constraint.ConstraintType);
            }
        }
    }

    private static void AddAttributes(List<TypeReference> found, ICustomAttributeProvider provider)
    {
        if (!provider.HasCustomAttributes)
        {
            return;
        }

        foreach (var attribute in provider.CustomAttributes)
        {
            AddType(found, attribute.AttributeType);
            foreach (var argument in attribute.ConstructorArguments)
            {
                AddArgument(found, argument);
            }

            foreach (var named in attribute.Properties.Concat(attribute.Fields))
            {
                AddArgument(found, named.Argument);
            }
        }
    }

    private static void AddArgument(List<TypeReference> found, CustomAttributeArgument argument)
    {
        AddType(found, argument.Type);
        switch (argument.Value)
        {
            case TypeReference typeOf:
                AddType(found, typeOf);
                break;
            case CustomAttributeArgument boxed:
                AddArgument(found, boxed);
                break;
            case CustomAttributeArgument[] array:
                foreach (var element in array)
                {
                    AddArgument(found, element);
                }

                break;
            default:
                break;
        }
    }

    /// <summary>A type and every type it is made of: generic arguments, array/pointer/by-ref elements, modifiers.</summary>
    private static void AddType(List<TypeReference> found, TypeReference? type)
    {
        switch (type)
        {
            case null:
            case GenericParameter:
                return;
            case GenericInstanceType generic:
                AddType(found, generic.ElementType);
                foreach (var argument in generic.GenericArguments)
                {
                    AddType(found, argument);
                }

                return;
            case IModifierType modified:
                AddType(found, modified.ModifierType);
                AddType(found, modified.ElementType);
                return;
            case FunctionPointerType pointer:
                AddSignature(found, pointer);
                return;
            case TypeSpecification specification:
                AddType(found, specification.ElementType);
                return;
            default:
                found.Add(type);
                return;
        }
    }
}
