// cvgl-edge test: drives the real SelectiveScan plugin through TensorRT's own interfaces, on the CPU.
//
// Built by tests/support/native_build.py against each set of TensorRT headers (no libnvinfer), with the
// plugin source as it ships and the CUDA kernel built for the CPU (HIP-CPU). It does what TensorRT
// does with a plugin library: getCreators, createPlugin from the fields the ONNX parser passes
// (INT32 values for the names getFieldNames lists), the build-phase calls, serialization through
// getFieldsToSerialize and createPlugin(kRUNTIME), attachToContext, onShapeChange and enqueue.
//
//   plugin_driver checks        interface checks; one "PASS name" / "FAIL name: why" line each
//   plugin_driver enqueue DIR   DIR/case.txt + DIR/<input>.bin -> DIR/out.bin (compared in Python)
//   plugin_driver stderr-log    a refused shape with no logger finder set (the message must reach stderr)
#include "selective_scan_plugin.h"

#include <NvInferImpl.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace nvinfer1;

extern "C" int cvgl_emulation_synchronize(void);  // export/hip_cpu/synchronize.cpp

namespace {

constexpr int32_t kInputs = 8;
enum Slot : int32_t { kU = 0, kDelta, kA, kB, kC, kD, kZ, kBias };
char const* const kSlotNames[kInputs] = {"u", "delta", "A", "B", "C", "D", "z", "delta_bias"};

// ------------------------------------------------------------------------------------- checks
int gPassed = 0;
int gFailed = 0;

void expect(bool ok, char const* name, std::string const& why = "") {
    if (ok) {
        ++gPassed;
        std::printf("PASS %s\n", name);
    } else {
        ++gFailed;
        std::printf("FAIL %s%s%s\n", name, why.empty() ? "" : ": ", why.c_str());
    }
}

// A logger as TensorRT hands one out through setLoggerFinder: it keeps the errors.
class CapturingLogger final : public ILogger {
public:
    void log(Severity severity, AsciiChar const* msg) noexcept override {
        if (severity <= Severity::kERROR) errors.emplace_back(msg);
    }
    std::vector<std::string> errors;
};

class Finder final : public ILoggerFinder {
public:
    explicit Finder(ILogger* logger) : mLogger(logger) {}
    ILogger* findLogger() override { return mLogger; }

private:
    ILogger* mLogger;
};

// IDimensionExpr / IExprBuilder doubles: TensorRT's classes forward to an apiv:: implementation.
class Expr final : public IDimensionExpr {
public:
    Expr(int64_t value, bool constant) {
        mImplObject.value = value;
        mImplObject.constant = constant;
        mImpl = &mImplObject;
    }
    ~Expr() noexcept override = default;

private:
    struct Impl final : apiv::VDimensionExpr {
        int64_t value = 0;
        bool constant = true;
        bool isConstant() const override { return constant; }
        int64_t getConstantValue() const override { return constant ? value : std::numeric_limits<int64_t>::min(); }
        bool isSizeTensor() const override { return false; }
    } mImplObject;
};

class ExprBuilder final : public IExprBuilder {
public:
    ExprBuilder() { mImpl = &mImplObject; }
    ~ExprBuilder() noexcept override = default;
    IDimensionExpr const* make(int64_t value, bool constant) { return mImplObject.make(value, constant); }

private:
    struct Impl final : apiv::VExprBuilder {
        std::deque<std::unique_ptr<Expr>> owned;
        IDimensionExpr const* make(int64_t value, bool constant) {
            owned.push_back(std::make_unique<Expr>(value, constant));
            return owned.back().get();
        }
        IDimensionExpr const* constant(int64_t value) override { return make(value, true); }
        IDimensionExpr const* operation(DimensionOperation op, IDimensionExpr const& a, IDimensionExpr const& b) override {
            if (!a.isConstant() || !b.isConstant()) return make(0, false);
            int64_t const x = a.getConstantValue(), y = b.getConstantValue();
            return make(op == DimensionOperation::kSUM ? x + y : op == DimensionOperation::kPROD ? x * y : x, true);
        }
        IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override {
            return nullptr;
        }
    } mImplObject;
};

Dims dims(std::initializer_list<int64_t> extents) {
    Dims d{};
    d.nbDims = static_cast<int32_t>(extents.size());
    int32_t i = 0;
    for (int64_t e : extents) d.d[i++] = e;
    return d;
}

// ------------------------------------------------------------------------------------- the plugin
struct Attrs {
    int32_t direction = 0, delta_softplus = 1, has_D = 1, has_z = 1, has_delta_bias = 1;
    bool operator==(Attrs const& o) const {
        return direction == o.direction && delta_softplus == o.delta_softplus && has_D == o.has_D &&
               has_z == o.has_z && has_delta_bias == o.has_delta_bias;
    }
    int32_t* byName(char const* name) {
        if (!std::strcmp(name, "direction")) return &direction;
        if (!std::strcmp(name, "delta_softplus")) return &delta_softplus;
        if (!std::strcmp(name, "has_D")) return &has_D;
        if (!std::strcmp(name, "has_z")) return &has_z;
        if (!std::strcmp(name, "has_delta_bias")) return &has_delta_bias;
        return nullptr;
    }
};

IPluginCreatorV3One* creator() {
    int32_t count = 0;
    IPluginCreatorInterface* const* creators = getCreators(count);
    return count == 1 ? static_cast<IPluginCreatorV3One*>(creators[0]) : nullptr;
}

// What onnx-tensorrt's loadFields passes: for each name getFieldNames lists, the node's INT
// attribute as one kINT32 (the exporter writes all five; the string attributes are not fields).
IPluginV3* createLikeParser(Attrs attrs) {
    IPluginCreatorV3One* c = creator();
    PluginFieldCollection const* names = c->getFieldNames();
    std::vector<PluginField> fields;
    for (int32_t i = 0; i < names->nbFields; ++i) {
        int32_t* value = attrs.byName(names->fields[i].name);
        if (value) fields.emplace_back(names->fields[i].name, value, PluginFieldType::kINT32, 1);
    }
    PluginFieldCollection fc{static_cast<int32_t>(fields.size()), fields.data()};
    return c->createPlugin("node_SelectiveScan_0", &fc, TensorRTPhase::kBUILD);
}

IPluginV3OneCore* core(IPluginV3* p) {
    return static_cast<IPluginV3OneCore*>(p->getCapabilityInterface(PluginCapabilityType::kCORE));
}
IPluginV3OneBuild* build(IPluginV3* p) {
    return static_cast<IPluginV3OneBuild*>(p->getCapabilityInterface(PluginCapabilityType::kBUILD));
}
IPluginV3OneRuntime* runtime(IPluginV3* p) {
    return static_cast<IPluginV3OneRuntime*>(p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
}

// The plugin's attributes as it serializes them (the only public way to read them back).
Attrs serialized(IPluginV3* p) {
    Attrs a{-1, -1, -1, -1, -1};
    PluginFieldCollection const* fc = runtime(p)->getFieldsToSerialize();
    for (int32_t i = 0; fc && i < fc->nbFields; ++i) {
        int32_t* target = a.byName(fc->fields[i].name);
        if (target && fc->fields[i].type == PluginFieldType::kINT32 && fc->fields[i].length == 1)
            *target = *static_cast<int32_t const*>(fc->fields[i].data);
    }
    return a;
}

// ------------------------------------------------------------------------------------- tensor descriptions
struct Shapes {
    Dims in[kInputs];
};

Shapes goodShapes(int64_t batch, int64_t dc, int64_t n, int64_t len, Attrs const& a) {
    Shapes s;
    s.in[kU] = s.in[kDelta] = dims({batch, dc, len});
    s.in[kZ] = a.has_z ? dims({batch, dc, len}) : dims({1});
    s.in[kA] = dims({dc, n});
    s.in[kB] = s.in[kC] = dims({batch, n, len});
    s.in[kD] = a.has_D ? dims({dc}) : dims({1});
    s.in[kBias] = a.has_delta_bias ? dims({dc}) : dims({1});
    return s;
}

void describe(PluginTensorDesc* desc, Shapes const& s, DataType data, DataType param, Attrs const& a) {
    for (int32_t i = 0; i < kInputs; ++i) {
        desc[i] = PluginTensorDesc{};
        desc[i].dims = s.in[i];
        desc[i].format = TensorFormat::kLINEAR;
        desc[i].scale = 1.f;
        bool const placeholder = (i == kZ && !a.has_z) || (i == kD && !a.has_D) || (i == kBias && !a.has_delta_bias);
        desc[i].type = placeholder ? DataType::kFLOAT : (i == kA || i == kD || i == kBias) ? param : data;
    }
    desc[kInputs] = desc[kU];  // the output: u's shape and type
}

int32_t configure(IPluginV3* p, Shapes const& s, DataType data, DataType param, Attrs const& a) {
    PluginTensorDesc plain[kInputs + 1];
    describe(plain, s, data, param, a);
    DynamicPluginTensorDesc dyn[kInputs + 1];
    for (int32_t i = 0; i <= kInputs; ++i) {
        dyn[i].desc = plain[i];
        dyn[i].min = dyn[i].max = dyn[i].opt = plain[i].dims;
    }
    return build(p)->configurePlugin(dyn, kInputs, dyn + kInputs, 1);
}

int32_t shapeChange(IPluginV3* p, Shapes const& s, DataType data, DataType param, Attrs const& a) {
    PluginTensorDesc desc[kInputs + 1];
    describe(desc, s, data, param, a);
    return runtime(p)->onShapeChange(desc, kInputs, desc + kInputs, 1);
}

bool supports(IPluginV3* p, DataType data, DataType param, Attrs const& a, int32_t pos, DataType type,
              TensorFormat format = TensorFormat::kLINEAR) {
    Shapes const s = goodShapes(2, 24, 16, 65, a);
    PluginTensorDesc plain[kInputs + 1];
    describe(plain, s, data, param, a);
    plain[pos].type = type;
    plain[pos].format = format;
    DynamicPluginTensorDesc dyn[kInputs + 1];
    for (int32_t i = 0; i <= kInputs; ++i) dyn[i].desc = plain[i];
    return build(p)->supportsFormatCombination(pos, dyn, kInputs, 1);
}

// ------------------------------------------------------------------------------------- checks
void checkCreator() {
    IPluginCreatorV3One* c = creator();
    expect(c != nullptr, "getCreators returns one creator");
    if (!c) return;
    expect(std::strstr(c->getInterfaceInfo().kind, "CREATOR_V3ONE") != nullptr, "the creator is an IPluginCreatorV3One");
    expect(!std::strcmp(c->getPluginName(), "SelectiveScan") && !std::strcmp(c->getPluginVersion(), "1") &&
               !std::strcmp(c->getPluginNamespace(), "cvgl"),
           "the creator is SelectiveScan version 1 in namespace cvgl");
    PluginFieldCollection const* names = c->getFieldNames();
    bool fieldsOk = names && names->nbFields == 5;
    for (int32_t i = 0; fieldsOk && i < names->nbFields; ++i) {
        fieldsOk = Attrs{}.byName(names->fields[i].name) != nullptr && names->fields[i].type == PluginFieldType::kINT32;
    }
    expect(fieldsOk, "getFieldNames lists the five INT32 fields");
}

void checkCreatePlugin() {
    Attrs const wanted{1, 1, 0, 1, 0};
    std::unique_ptr<IPluginV3> p(createLikeParser(wanted));
    expect(p != nullptr, "createPlugin from the parser's INT32 fields");
    if (!p) return;
    expect(!std::strcmp(core(p.get())->getPluginName(), "SelectiveScan") &&
               !std::strcmp(core(p.get())->getPluginNamespace(), "cvgl"),
           "the plugin's core capability names SelectiveScan in cvgl");
    expect(serialized(p.get()) == wanted, "the plugin keeps the parser's field values");

    std::unique_ptr<IPluginV3> defaults(creator()->createPlugin("n", nullptr, TensorRTPhase::kBUILD));
    expect(defaults && serialized(defaults.get()) == Attrs{0, 0, 1, 1, 1},
           "absent fields take the contract defaults (direction 0, softplus 0, has_* 1)");

    int32_t const two = 2;
    PluginField bad("direction", &two, PluginFieldType::kINT32, 1);
    PluginFieldCollection badFc{1, &bad};
    expect(creator()->createPlugin("n", &badFc, TensorRTPhase::kBUILD) == nullptr, "direction 2 is refused");

    float const notInt = 1.f;
    PluginField wrongType("has_z", &notInt, PluginFieldType::kFLOAT32, 1);
    PluginFieldCollection wrongFc{1, &wrongType};
    expect(creator()->createPlugin("n", &wrongFc, TensorRTPhase::kBUILD) == nullptr, "a float field is refused");

    char const version[] = "1";
    PluginField extra("plugin_version", version, PluginFieldType::kCHAR, 2);
    PluginFieldCollection extraFc{1, &extra};
    std::unique_ptr<IPluginV3> withExtra(creator()->createPlugin("n", &extraFc, TensorRTPhase::kBUILD));
    expect(withExtra != nullptr, "an unknown string field is ignored");
}

void checkBuildCapability(CapturingLogger& logger) {
    Attrs const a{};
    std::unique_ptr<IPluginV3> p(createLikeParser(a));
    IPluginV3OneBuild* b = build(p.get());
    expect(b->getNbOutputs() == 1, "one output");

    bool typesOk = true;
    for (DataType t : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16}) {
        DataType in[kInputs];
        for (auto& x : in) x = t;
        in[kA] = in[kD] = in[kBias] = DataType::kFLOAT;
        DataType out = DataType::kINT8;
        typesOk = typesOk && b->getOutputDataTypes(&out, 1, in, kInputs) == 0 && out == t;
    }
    DataType in7[kInputs] = {};
    DataType out7 = DataType::kFLOAT;
    expect(typesOk && b->getOutputDataTypes(&out7, 1, in7, 7) != 0, "getOutputDataTypes: u's type; 7 inputs refused");

    ExprBuilder exprs;
    IDimensionExpr const* batch = exprs.make(0, false);  // dynamic batch
    DimsExprs inputs[kInputs];
    for (auto& e : inputs) e.nbDims = 0;
    inputs[kU].nbDims = 3;
    inputs[kU].d[0] = batch;
    inputs[kU].d[1] = exprs.make(768, true);
    inputs[kU].d[2] = exprs.make(257, true);
    DimsExprs out{};
    int32_t const rc = b->getOutputShapes(inputs, kInputs, nullptr, 0, &out, 1, exprs);
    expect(rc == 0 && out.nbDims == 3 && out.d[0] == batch && !out.d[0]->isConstant() &&
               out.d[1]->getConstantValue() == 768 && out.d[2]->getConstantValue() == 257,
           "getOutputShapes: u's shape with the dynamic batch kept");

    PluginTensorDesc unusedDesc[kInputs + 1];
    describe(unusedDesc, goodShapes(1, 8, 16, 4, a), DataType::kFLOAT, DataType::kFLOAT, a);
    DynamicPluginTensorDesc unused[kInputs + 1];
    for (int32_t i = 0; i <= kInputs; ++i) unused[i].desc = unusedDesc[i];
    expect(b->getWorkspaceSize(unused, kInputs, unused + kInputs, 1) == 0, "no workspace");

    // supportsFormatCombination over the type/format table
    DataType const F = DataType::kFLOAT, H = DataType::kHALF, BF = DataType::kBF16;
    bool table = true;
    for (DataType data : {F, H, BF}) {
        for (DataType param : {F, data}) {
            for (int32_t pos = 0; pos <= kInputs; ++pos) {
                DataType const want = (pos == kA || pos == kD || pos == kBias) ? param : data;
                table = table && supports(p.get(), data, param, a, pos, want);
            }
        }
    }
    expect(table, "every data type (fp32, fp16, bf16) with fp32 or same-type parameters is accepted");
    expect(!supports(p.get(), F, F, a, kU, DataType::kINT8), "int8 data is refused");
    expect(!supports(p.get(), H, F, a, kB, F), "B of another type than u is refused");
    expect(!supports(p.get(), H, F, a, kInputs, F), "an output of another type than u is refused");
    expect(!supports(p.get(), F, F, a, kA, H), "fp16 A with fp32 data is refused");
    expect(!supports(p.get(), H, F, a, kD, H), "D of another type than A is refused");
    expect(!supports(p.get(), F, F, a, kU, F, TensorFormat::kCHW4), "a vectorized format is refused");
    expect(!supports(p.get(), H, F, a, kZ, F), "a used z of another type than u is refused");
    Attrs noZ = a;
    noZ.has_z = 0;
    std::unique_ptr<IPluginV3> pNoZ(createLikeParser(noZ));
    expect(supports(pNoZ.get(), H, F, noZ, kZ, F), "an unused fp32 z placeholder is accepted in an fp16 graph");

    // configurePlugin: good shapes with the batch dynamic (-1, as at build time), bad ones with it fixed
    logger.errors.clear();
    expect(configure(p.get(), goodShapes(-1, 24, 16, 65, a), F, F, a) == 0 && logger.errors.empty(),
           "configurePlugin accepts consistent shapes with a dynamic batch");
    struct Bad {
        char const* name;
        int32_t slot;
        Dims shape;
        char const* message;
    };
    Bad const bad[] = {
        {"A with the wrong Dc", kA, dims({25, 16}), "A must be (Dc, N)"},
        {"A with another N than B and C", kA, dims({24, 8}), "A must be (Dc, N)"},
        {"B with N = 17", kB, dims({2, 17, 65}), "B and C must have the same state size"},
        {"C with another N than B", kC, dims({2, 8, 65}), "B and C must have the same state size"},
        {"B with another L than u", kB, dims({2, 16, 64}), "B and C must be (batch, N, L)"},
        {"C with another batch than u", kC, dims({3, 16, 65}), "B and C must be (batch, N, L)"},
        {"delta with another L than u", kDelta, dims({2, 24, 64}), "delta and z must have u's shape"},
        {"z with another Dc than u", kZ, dims({2, 23, 65}), "delta and z must have u's shape"},
        {"D of the wrong length", kD, dims({23}), "D and delta_bias must have length Dc"},
        {"delta_bias of the wrong length", kBias, dims({25}), "D and delta_bias must have length Dc"},
        {"a 2-D u", kU, dims({24, 65}), "must be 3-D"},
        {"a 1-D A", kA, dims({24}), "A must be 2-D"},
    };
    for (Bad const& c : bad) {
        Shapes s = goodShapes(2, 24, 16, 65, a);
        s.in[c.slot] = c.shape;
        logger.errors.clear();
        int32_t const status = configure(p.get(), s, F, F, a);
        bool const logged = !logger.errors.empty() && logger.errors.back().find(c.message) != std::string::npos;
        std::string const name = std::string("configurePlugin refuses ") + c.name;
        expect(status != 0 && logged, name.c_str(), logger.errors.empty() ? "nothing logged" : logger.errors.back());
    }
    Shapes all17 = goodShapes(-1, 24, 17, 65, a);
    expect(configure(p.get(), all17, F, F, a) != 0, "configurePlugin refuses N = 17 everywhere");
    Attrs unusedAll{0, 1, 0, 0, 0};
    std::unique_ptr<IPluginV3> pUnused(createLikeParser(unusedAll));
    expect(configure(pUnused.get(), goodShapes(-1, 24, 16, 65, unusedAll), H, F, unusedAll) == 0,
           "configurePlugin ignores (1,) placeholders of unused inputs");
    DynamicPluginTensorDesc seven[kInputs + 1];
    expect(b->configurePlugin(seven, 7, seven + 7, 1) != 0, "configurePlugin refuses 7 inputs");
}

void checkRuntimeCapability(CapturingLogger& logger) {
    Attrs const a{1, 1, 1, 0, 1};
    std::unique_ptr<IPluginV3> p(createLikeParser(a));
    DataType const F = DataType::kFLOAT, H = DataType::kHALF;
    logger.errors.clear();
    expect(shapeChange(p.get(), goodShapes(3, 24, 16, 65, a), H, F, a) == 0 && logger.errors.empty(),
           "onShapeChange accepts consistent shapes");
    expect(shapeChange(p.get(), goodShapes(-1, 24, 16, 65, a), H, F, a) != 0, "onShapeChange refuses unknown extents");
    Shapes s = goodShapes(3, 24, 16, 65, a);
    s.in[kA] = dims({24, 15});
    logger.errors.clear();
    expect(shapeChange(p.get(), s, H, F, a) != 0 && !logger.errors.empty(), "onShapeChange refuses A with B's N differing");

    // serialization round trip, as engine deserialization does it
    PluginFieldCollection const* fc = runtime(p.get())->getFieldsToSerialize();
    std::unique_ptr<IPluginV3> restored(creator()->createPlugin("n", fc, TensorRTPhase::kRUNTIME));
    expect(restored && serialized(restored.get()) == a, "getFieldsToSerialize -> createPlugin(kRUNTIME) round trip");

    std::unique_ptr<IPluginV3> copy(p->clone());
    expect(copy && copy.get() != p.get() && serialized(copy.get()) == a, "clone keeps the attributes");
    std::unique_ptr<IPluginV3> attached(runtime(p.get())->attachToContext(nullptr));
    expect(attached && attached.get() != p.get() && serialized(attached.get()) == a,
           "attachToContext returns a plugin with the same attributes");
}

int runChecks() {
    CapturingLogger logger;
    Finder finder(&logger);
    setLoggerFinder(&finder);
    checkCreator();
    checkCreatePlugin();
    checkBuildCapability(logger);
    checkRuntimeCapability(logger);
    setLoggerFinder(nullptr);
    std::printf("checks: %d passed, %d failed\n", gPassed, gFailed);
    return gFailed == 0 ? 0 : 1;
}

int runStderrLog() {
    setLoggerFinder(nullptr);
    Attrs const a{};
    std::unique_ptr<IPluginV3> p(createLikeParser(a));
    Shapes s = goodShapes(1, 8, 16, 4, a);
    s.in[kA] = dims({8, 4});
    return configure(p.get(), s, DataType::kFLOAT, DataType::kFLOAT, a) != 0 ? 0 : 1;
}

// ------------------------------------------------------------------------------------- enqueue
DataType typeNamed(std::string const& name) {
    return name == "fp16" ? DataType::kHALF : name == "bf16" ? DataType::kBF16 : DataType::kFLOAT;
}

size_t bytesOf(DataType t) { return t == DataType::kFLOAT ? 4 : 2; }

int64_t volume(Dims const& d) {
    int64_t v = 1;
    for (int32_t i = 0; i < d.nbDims; ++i) v *= d.d[i];
    return v;
}

std::vector<char> readFile(std::string const& path, size_t expected) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (data.size() != expected) {
        std::fprintf(stderr, "%s: %zu bytes, expected %zu\n", path.c_str(), data.size(), expected);
        data.clear();
    }
    return data;
}

// The engine's life of one plugin: build phase (created from the node's fields, types, shapes,
// formats, configure), serialization, runtime phase (created from the serialized fields,
// attached to a context, shapes set, enqueued), then a wait for the CPU-emulated kernel.
int runEnqueue(std::string const& dir) {
    std::ifstream spec(dir + "/case.txt");
    std::string dataName, paramName;
    int64_t batch, dc, n, len;
    Attrs a;
    if (!(spec >> dataName >> paramName >> batch >> dc >> n >> len >> a.direction >> a.delta_softplus >> a.has_D >>
          a.has_z >> a.has_delta_bias)) {
        std::fprintf(stderr, "bad %s/case.txt\n", dir.c_str());
        return 2;
    }
    DataType const data = typeNamed(dataName), param = typeNamed(paramName);
    std::unique_ptr<IPluginV3> built(createLikeParser(a));
    if (!built) return 3;
    DataType inTypes[kInputs];
    PluginTensorDesc desc[kInputs + 1];
    Shapes const shapes = goodShapes(batch, dc, n, len, a);
    describe(desc, shapes, data, param, a);
    for (int32_t i = 0; i < kInputs; ++i) inTypes[i] = desc[i].type;
    DataType outType = DataType::kINT8;
    if (build(built.get())->getOutputDataTypes(&outType, 1, inTypes, kInputs) != 0 || outType != data) return 4;
    DynamicPluginTensorDesc dyn[kInputs + 1];
    for (int32_t i = 0; i <= kInputs; ++i) {
        dyn[i].desc = desc[i];
        dyn[i].min = dyn[i].max = dyn[i].opt = desc[i].dims;
    }
    for (int32_t pos = 0; pos <= kInputs; ++pos) {
        if (!build(built.get())->supportsFormatCombination(pos, dyn, kInputs, 1)) return 5;
    }
    Shapes dynamicBatch = shapes;
    for (int32_t slot : {kU, kDelta, kB, kC}) dynamicBatch.in[slot].d[0] = -1;
    if (a.has_z) dynamicBatch.in[kZ].d[0] = -1;
    if (configure(built.get(), dynamicBatch, data, param, a) != 0) return 6;

    std::unique_ptr<IPluginV3> deserialized(
        creator()->createPlugin("n", runtime(built.get())->getFieldsToSerialize(), TensorRTPhase::kRUNTIME));
    std::unique_ptr<IPluginV3> plugin(deserialized ? runtime(deserialized.get())->attachToContext(nullptr) : nullptr);
    if (!plugin) return 7;
    if (runtime(plugin.get())->onShapeChange(desc, kInputs, desc + kInputs, 1) != 0) return 8;

    std::vector<std::vector<char>> buffers(kInputs);
    void const* inputs[kInputs];
    for (int32_t i = 0; i < kInputs; ++i) {
        buffers[i] = readFile(dir + "/" + kSlotNames[i] + ".bin", volume(desc[i].dims) * bytesOf(desc[i].type));
        if (buffers[i].empty()) return 9;
        inputs[i] = buffers[i].data();
    }
    std::vector<char> out(volume(desc[kInputs].dims) * bytesOf(data));
    void* outputs[1] = {out.data()};
    if (runtime(plugin.get())->enqueue(desc, desc + kInputs, inputs, outputs, nullptr, nullptr) != 0) return 10;
    if (cvgl_emulation_synchronize() != 0) return 11;
    std::ofstream(dir + "/out.bin", std::ios::binary).write(out.data(), static_cast<std::streamsize>(out.size()));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string const mode = argc > 1 ? argv[1] : "";
    if (mode == "checks") return runChecks();
    if (mode == "stderr-log") return runStderrLog();
    if (mode == "enqueue" && argc > 2) return runEnqueue(argv[2]);
    std::fprintf(stderr, "usage: plugin_driver checks | stderr-log | enqueue DIR\n");
    return 2;
}
